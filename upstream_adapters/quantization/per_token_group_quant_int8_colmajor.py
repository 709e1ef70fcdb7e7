"""Upstream per-token-group INT8 quantization with column-major scales: SGLang 0.5.23
`_per_token_group_quant_8bit_raw` (kernels/ops/quantization/fp8_kernel.py), the Triton launcher of
`_per_token_group_quant_8bit_colmajor`, called with dtype=torch.int8, column_major_scales=True,
scale_tma_aligned=True, scale_ue8m0=False (the scale layout SGLang's column-major callers ask for).

The timed call is that launcher with output_q / output_s = the spec's "q" [T, H] int8 and "s" buffers: the spec
allocates s exactly as the launcher's own `create_per_token_group_quant_fp8_output_scale` does for these flags
([H / G, ceil4(T)] storage viewed [T, H / G], strides (1, ceil4(T))), so the kernel's `y_s_col_stride` =
s.stride(1) is the production one.  With output_q / output_s given, the launcher allocates nothing and only
launches the kernel (scale_ue8m0=False: no DeepGEMM re-layout after it).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Outputs, Prepared
from harness.specs.quantization._common import EPS
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch

SGL_FP8 = "sglang.kernels.ops.quantization.fp8_kernel"


class SglangPerTokenGroupQuantInt8ColMajor(UpstreamImpl):
    kernel = "per_token_group_quant_int8_colmajor"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_FP8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        launcher = self.mod(SGL_FP8)._per_token_group_quant_8bit_raw
        x, group = inputs["x"], case.params["G"]
        xq, xs = out["q"], out["s"]

        def fn() -> None:
            launcher(x, group, EPS, torch.int8, column_major_scales=True, scale_tma_aligned=True,
                     scale_ue8m0=False, output_q=xq, output_s=xs)

        info = {"config": {"column_major_scales": True, "scale_tma_aligned": True, **row_quant_launch(group)},
                "config_source": "launcher heuristic (_per_token_group_quant_8bit_raw)",
                "notes": self.notes("Triton _per_token_group_quant_8bit_colmajor via _per_token_group_quant_8bit_raw "
                                    "(dtype int8), output_q / output_s = the spec's q / s buffers (s in the "
                                    "launcher's TMA-aligned column-major layout)")}
        return Prepared(fn, info)


IMPLS = [SglangPerTokenGroupQuantInt8ColMajor()]
