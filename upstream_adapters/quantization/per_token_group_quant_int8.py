"""Upstream per-token-group INT8 quantization: vLLM 0.33.0 `_per_token_group_quant_int8` (int8_utils) and
SGLang 0.5.23 `per_token_group_quant_int8` (quantization/int8_kernel, a pure-Triton launcher).

vLLM's launcher `per_token_group_quant_int8` prefers the compiled op `torch.ops._C.per_token_group_quant_int8`
on CUDA (not loadable, not Triton), so the adapter launches the @triton.jit kernel exactly as the launcher's
Triton branch does (grid, BLOCK, warp heuristic, iinfo(int8) limits).  SGLang's launcher is called as is; it
allocates its q / s outputs inside the call, as in production.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.quantization._common import EPS, dequantize_groups_into
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch

VLLM_INT8 = "vllm.model_executor.layers.quantization.utils.int8_utils"
SGL_INT8 = "sglang.kernels.ops.quantization.int8_kernel"
KERNEL = "per_token_group_quant_int8"


class VllmPerTokenGroupQuantInt8(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_INT8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        i8 = self.mod(VLLM_INT8)
        x, group = inputs["x"], case.params["G"]
        t, h = x.shape
        xq = torch.empty(x.shape, device=x.device, dtype=torch.int8)
        xs = torch.empty(t, h // group, device=x.device, dtype=torch.float32)
        info8 = torch.iinfo(torch.int8)
        launch = row_quant_launch(group)  # the launcher's heuristic
        kernel = i8._per_token_group_quant_int8

        def fn() -> None:
            kernel[(x.numel() // group,)](
                x, xq, xs, group, group, EPS, int8_min=info8.min, int8_max=info8.max, **launch)
            dequantize_groups_into(out, xq, xs, group)

        info = {"config": launch,
                "config_source": "launcher heuristic (per_token_group_quant_int8 Triton branch)",
                "notes": self.notes("Triton _per_token_group_quant_int8 launched as the launcher's non-CUDA "
                                    "branch (CUDA op _C.per_token_group_quant_int8 preferred, not loadable)",
                                    "timed call includes the contract's torch dequant epilogue")}
        return Prepared(fn, info)


class SglangPerTokenGroupQuantInt8(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_INT8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_INT8).per_token_group_quant_int8
        x, group = inputs["x"], case.params["G"]

        def fn() -> None:
            xq, xs = launcher(x, group, EPS, torch.int8)
            dequantize_groups_into(out, xq, xs, group)

        info = {"config": {}, "config_source": "launcher heuristic (per_token_group_quant_int8)",
                "notes": self.notes("public Triton launcher per_token_group_quant_int8 (allocates q, s per call)",
                                    "timed call includes the contract's torch dequant epilogue")}
        return Prepared(fn, info)


IMPLS = [VllmPerTokenGroupQuantInt8(), SglangPerTokenGroupQuantInt8()]
