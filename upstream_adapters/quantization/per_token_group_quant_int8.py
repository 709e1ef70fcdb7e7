"""Upstream per-token-group INT8 quantization: vLLM 0.33.0 `_per_token_group_quant_int8` (int8_utils) and
SGLang 0.5.23 `_per_token_group_quant_int8` (quantization/int8_kernel, under its pure-Triton launcher
`per_token_group_quant_int8`).

Both timed calls are the upstream Triton kernel launch alone, writing the spec's "q" [T, H] int8 and "s" [T, H/G]
fp32 row-major buffers directly (no copy, no epilogue).  Neither launcher takes output buffers, so each kernel is
launched exactly as its launcher launches it: grid (T * H / G,), arguments (x, x_q, x_s, group_size, N = group_size,
eps), int8_min / int8_max from torch.iinfo(int8), BLOCK = next_power_of_2(G), warps = BLOCK / 256 clamped to
1..8, one stage (`row_quant_launch`).  vLLM's launcher prefers the compiled op `torch.ops._C.
per_token_group_quant_int8` on CUDA (not loadable, not Triton): its Triton branch is what runs here.  SGLang's
launcher only adds the two torch.empty allocations this skips.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Outputs, Prepared
from harness.specs.quantization._common import EPS
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch

VLLM_INT8 = "vllm.model_executor.layers.quantization.utils.int8_utils"
SGL_INT8 = "sglang.kernels.ops.quantization.int8_kernel"
KERNEL = "per_token_group_quant_int8"


def launch_group_quant_int8(kernel, x: torch.Tensor, xq: torch.Tensor, xs: torch.Tensor, group: int) -> None:
    """`kernel` (vLLM's or SGLang's `_per_token_group_quant_int8`, the same signature) launched as both launchers
    launch it (M = x.numel() // group programs, N = group)."""
    info8 = torch.iinfo(torch.int8)
    kernel[(x.numel() // group,)](
        x, xq, xs, group, group, EPS, int8_min=info8.min, int8_max=info8.max, **row_quant_launch(group))


class VllmPerTokenGroupQuantInt8(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_INT8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        kernel = self.mod(VLLM_INT8)._per_token_group_quant_int8
        x, group = inputs["x"], case.params["G"]
        xq, xs = out["q"], out["s"]

        def fn() -> None:
            launch_group_quant_int8(kernel, x, xq, xs, group)

        info = {"config": row_quant_launch(group),
                "config_source": "launcher heuristic (per_token_group_quant_int8 Triton branch)",
                "notes": self.notes("Triton _per_token_group_quant_int8 launched as the launcher's non-CUDA "
                                    "branch (CUDA op _C.per_token_group_quant_int8 preferred, not loadable), "
                                    "writing the spec's q / s buffers")}
        return Prepared(fn, info)


class SglangPerTokenGroupQuantInt8(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_INT8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        kernel = self.mod(SGL_INT8)._per_token_group_quant_int8
        x, group = inputs["x"], case.params["G"]
        xq, xs = out["q"], out["s"]

        def fn() -> None:
            launch_group_quant_int8(kernel, x, xq, xs, group)

        info = {"config": row_quant_launch(group),
                "config_source": "launcher heuristic (per_token_group_quant_int8)",
                "notes": self.notes("Triton _per_token_group_quant_int8 launched as the public launcher "
                                    "per_token_group_quant_int8 launches it, writing the spec's q / s buffers "
                                    "(the launcher itself allocates them per call)")}
        return Prepared(fn, info)


IMPLS = [VllmPerTokenGroupQuantInt8(), SglangPerTokenGroupQuantInt8()]
