"""Upstream per-token-group FP8 quantization: vLLM 0.33.0 `_per_token_group_quant_fp8` (fp8_utils) and SGLang
0.5.23 `_per_token_group_quant_8bit` via `_per_token_group_quant_8bit_raw` (quantization/fp8_kernel).

Both timed calls are the upstream Triton kernel launch alone, writing the spec's "q" [T, H] fp8 and "s" [T, H/G]
fp32 row-major buffers directly (no copy, no epilogue).

vLLM's launcher `per_token_group_quant_fp8` prefers the compiled CUDA op `torch.ops._C.per_token_group_fp8_quant`
on CUDA (not loadable with a python-only tree, and not Triton), so the adapter launches the launcher's own
"TRITON FALLBACK" branch: the @triton.jit kernel with the launcher's grid, BLOCK and warp heuristic, and fp8
limits from vLLM's `get_fp8_min_max()` (`vllm_group_quant_fp8`), into the spec's buffers.  SGLang on CUDA routes
`per_token_group_quant_fp8` to a JIT CUDA kernel; its Triton path is `_per_token_group_quant_8bit_raw` (what it
uses elsewhere), called with output_q / output_s = the spec's buffers and row-major scales (row 67; row 70 is the
same launcher with column_major_scales=True).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Outputs, Prepared
from harness.specs.quantization._common import EPS
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch, vllm_group_quant_fp8

VLLM_FP8 = "vllm.model_executor.layers.quantization.utils.fp8_utils"
SGL_FP8 = "sglang.kernels.ops.quantization.fp8_kernel"
KERNEL = "per_token_group_quant_fp8"


class VllmPerTokenGroupQuantFp8(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_FP8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        fp8u = self.mod(VLLM_FP8)
        x, group = inputs["x"], case.params["G"]
        xq, xs = out["q"], out["s"]

        def fn() -> None:
            vllm_group_quant_fp8(fp8u, x, group, xq, xs)

        info = {"config": row_quant_launch(group),
                "config_source": "launcher heuristic (per_token_group_quant_fp8 Triton fallback)",
                "notes": self.notes("Triton _per_token_group_quant_fp8 launched as the launcher's fallback "
                                    "(CUDA op _C.per_token_group_fp8_quant preferred on CUDA, not loadable), "
                                    "writing the spec's q / s buffers",
                                    "use_ue8m0=False (no DeepGEMM e8m0 on this path)")}
        return Prepared(fn, info)


class SglangPerTokenGroupQuantFp8(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_FP8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        fp8k = self.mod(SGL_FP8)
        x, group = inputs["x"], case.params["G"]
        xq, xs = out["q"], out["s"]
        launcher = fp8k._per_token_group_quant_8bit_raw

        def fn() -> None:
            launcher(x, group, EPS, torch.float8_e4m3fn, False, False, False, output_q=xq, output_s=xs)

        info = {"config": {"column_major_scales": False, **row_quant_launch(group)},
                "config_source": "launcher heuristic (_per_token_group_quant_8bit_raw)",
                "notes": self.notes("Triton path _per_token_group_quant_8bit_raw (CUDA per_token_group_quant "
                                    "JIT kernel is SGLang's CUDA default), output_q / output_s = the spec's "
                                    "q / s buffers")}
        return Prepared(fn, info)


IMPLS = [VllmPerTokenGroupQuantFp8(), SglangPerTokenGroupQuantFp8()]
