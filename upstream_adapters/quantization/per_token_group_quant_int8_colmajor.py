"""Upstream per-token-group INT8 quantization with column-major scales: SGLang 0.5.23
`_per_token_group_quant_8bit_raw` (kernels/ops/quantization/fp8_kernel.py), the Triton launcher of
`_per_token_group_quant_8bit_colmajor`, called with dtype=torch.int8, column_major_scales=True,
scale_tma_aligned=True (the scale layout SGLang's column-major callers ask for: [H / G, T rounded up to 4]
storage, viewed [T, H / G]), scale_ue8m0=False.  The launcher allocates q and s inside the call, as in
production; the timed call includes the contract's torch dequant epilogue, which reads s through its strides.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.quantization._common import EPS, dequantize_groups_into
from upstream_adapters.quantization._common import UpstreamImpl

SGL_FP8 = "sglang.kernels.ops.quantization.fp8_kernel"


class SglangPerTokenGroupQuantInt8ColMajor(UpstreamImpl):
    kernel = "per_token_group_quant_int8_colmajor"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_FP8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        import triton

        launcher = self.mod(SGL_FP8)._per_token_group_quant_8bit_raw
        x, group = inputs["x"], case.params["G"]

        def fn() -> None:
            xq, xs = launcher(x, group, EPS, torch.int8, column_major_scales=True, scale_tma_aligned=True,
                              scale_ue8m0=False)
            dequantize_groups_into(out, xq, xs, group)

        info = {"config": {"column_major_scales": True, "scale_tma_aligned": True,
                           "BLOCK": triton.next_power_of_2(group)},
                "config_source": "launcher heuristic (_per_token_group_quant_8bit_raw)",
                "notes": self.notes("Triton _per_token_group_quant_8bit_colmajor via _per_token_group_quant_8bit_raw "
                                    "(dtype int8; allocates q, s per call)",
                                    "timed call includes the contract's torch dequant epilogue")}
        return Prepared(fn, info)


IMPLS = [SglangPerTokenGroupQuantInt8ColMajor()]
