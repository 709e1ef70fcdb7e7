"""Upstream per-token INT8 quantization: vLLM 0.33.0 `_per_token_quant_int8` (int8_utils), the Triton kernel of
the pure-Triton launcher `per_token_quant_int8`.  With current_platform pinned to CUDA the module's `round_int8` is
the CUDA libdevice.round variant.

The timed call is the kernel launch alone, writing the spec's "q" [T, H] int8 and "s" [T, 1] fp32 buffers directly.
The launcher takes no output buffers (it allocates q and s, then launches), so the kernel is launched exactly as
it launches it: grid (T,), (x, x_q, scales), stride_x = x.stride(-2), stride_xq = x_q.stride(-2), N = H,
BLOCK = next_power_of_2(H), warps = BLOCK / 256 clamped to 1..8, one stage (`row_quant_launch`).
"""

from __future__ import annotations

from harness.spec import Case, Inputs, Outputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch

VLLM_INT8 = "vllm.model_executor.layers.quantization.utils.int8_utils"


class VllmPerTokenQuantInt8(UpstreamImpl):
    kernel = "per_token_quant_int8"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_INT8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        kernel = self.mod(VLLM_INT8)._per_token_quant_int8
        x = inputs["x"]
        xq, xs = out["q"], out["s"]
        m, n = x.shape
        launch = row_quant_launch(n)  # the launcher's heuristic over the whole row

        def fn() -> None:
            kernel[(m,)](x, xq, xs, stride_x=x.stride(-2), stride_xq=xq.stride(-2), N=n, **launch)

        info = {"config": launch, "config_source": "launcher heuristic (per_token_quant_int8)",
                "notes": self.notes("Triton _per_token_quant_int8 launched as the public launcher "
                                    "per_token_quant_int8 launches it, writing the spec's q / s buffers (the "
                                    "launcher itself allocates them per call)")}
        return Prepared(fn, info)


IMPLS = [VllmPerTokenQuantInt8()]
