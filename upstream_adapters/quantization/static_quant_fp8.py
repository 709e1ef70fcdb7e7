"""Upstream static FP8 quantization: SGLang 0.5.23 `static_quant_fp8` (kernels/ops/quantization/fp8_kernel.py),
the public Triton launcher of `_static_quant_fp8`, called as apply_fp8_linear calls it for a static input scale
(repeat_scale=False).  It allocates q inside the call and launches with PDL on sm90+ (`is_arch_support_pdl`), as
in production.  The timed call includes the contract's torch dequant epilogue (out = float(q) * s).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch

SGL_FP8 = "sglang.kernels.ops.quantization.fp8_kernel"


class SglangStaticQuantFp8(UpstreamImpl):
    kernel = "static_quant_fp8"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_FP8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        fp8k = self.mod(SGL_FP8)
        x, scale = inputs["x"], inputs["scale"]
        launcher = fp8k.static_quant_fp8

        def fn() -> None:
            xq, xs = launcher(x, scale, repeat_scale=False)
            torch.mul(xq.to(torch.float32), xs.reshape(()), out=out)

        info = {"config": {**row_quant_launch(x.shape[-1]), "USE_PDL": bool(fp8k.is_arch_support_pdl())},
                "config_source": "launcher heuristic (static_quant_fp8)",
                "notes": self.notes("public Triton launcher static_quant_fp8 (repeat_scale=False; allocates q per "
                                    "call)", "timed call includes the contract's torch dequant epilogue")}
        return Prepared(fn, info)


IMPLS = [SglangStaticQuantFp8()]
