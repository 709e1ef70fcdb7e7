"""Upstream static FP8 quantization: SGLang 0.5.23 `_static_quant_fp8` (kernels/ops/quantization/fp8_kernel.py),
the Triton kernel of the public launcher `static_quant_fp8`, as apply_fp8_linear calls it for a static input scale
(repeat_scale=False).

The timed call is the kernel launch alone, writing the spec's "q" [T, H] fp8 buffer directly.  The launcher takes
no output buffer (it allocates q, then launches), so the kernel is launched exactly as it launches it: grid (T,),
(x, x_q.view(uint8), x_s, x_s_repeat=None, y_stride=N, N), the module's fp8_min / fp8_max, BLOCK =
next_power_of_2(H), warps = BLOCK / 256 clamped to 1..8, one stage, FP8_DTYPE = fp8_dtype_to_triton(fp8_dtype),
REPEAT_SCALE=False, and PDL (USE_PDL=True, launch_pdl=True) when `is_arch_support_pdl()` (sm90+), as in production.
The two host-side lookups (FP8_DTYPE, PDL) are evaluated once in prepare instead of per call.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Outputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl, row_quant_launch

SGL_FP8 = "sglang.kernels.ops.quantization.fp8_kernel"


class SglangStaticQuantFp8(UpstreamImpl):
    kernel = "static_quant_fp8"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_FP8,)

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        fp8k = self.mod(SGL_FP8)
        if fp8k.fp8_dtype != torch.float8_e4m3fn:
            raise RuntimeError(f"SGLang's fp8_dtype here is {fp8k.fp8_dtype}, the spec's q is float8_e4m3fn")
        x, scale = inputs["x"], inputs["scale"]
        assert x.is_contiguous() and scale.numel() == 1
        xq = out["q"].view(torch.uint8)  # the launcher stores the fp8 bits through a uint8 view
        m, n = x.numel() // x.shape[-1], x.shape[-1]
        launch = row_quant_launch(n)
        pdl = {"USE_PDL": True, "launch_pdl": True} if fp8k.is_arch_support_pdl() else {}
        fp8_tl = fp8k.fp8_dtype_to_triton(fp8k.fp8_dtype)
        kernel = fp8k._static_quant_fp8

        def fn() -> None:
            kernel[(m,)](x, xq, scale, None, n, n, fp8_min=fp8k.fp8_min, fp8_max=fp8k.fp8_max,
                         FP8_DTYPE=fp8_tl, REPEAT_SCALE=False, **launch, **pdl)

        info = {"config": {**launch, "USE_PDL": bool(pdl)},
                "config_source": "launcher heuristic (static_quant_fp8)",
                "notes": self.notes("Triton _static_quant_fp8 launched as the public launcher static_quant_fp8 "
                                    "launches it (repeat_scale=False), writing the spec's q buffer (the launcher "
                                    "itself allocates q per call)")}
        return Prepared(fn, info)


IMPLS = [SglangStaticQuantFp8()]
