"""Per-token-group FP8 activation quantization (catalog rows 65 vLLM `_per_token_group_quant_fp8`, 67 SGLang
`_per_token_group_quant_8bit`; row 70, SGLang's `_per_token_group_quant_8bit_colmajor`, is the same launcher with
column_major_scales=True and is not a separate row here: one provider name per upstream).

Math, per token t and group g of G consecutive columns (G = 128, DeepSeek-V3-style block fp8):

    s[t, g] = max(max_i |x[t, gG + i]|, 1e-10) / 448
    q[t, gG + i] = float8_e4m3fn(clamp(x[t, gG + i] / s[t, g], -448, 448))      (round to nearest even)

Shapes: x [T, H] bf16 (H = hidden_size, a multiple of G); q [T, H] float8_e4m3fn; s [T, H / G] fp32.

Output contract: the impl writes q and s into its own buffers (the kernel's production layout) and then, in the
same call, the dequantized activations out[t, j] = float(q[t, j]) * s[t, j // G] into the spec's fp32 [T, H]
buffer (the torch epilogue `dequantize_groups_into`, identical for every provider).  See _common.py for why the
product is what is checked.  The timed call therefore includes that epilogue for every provider.
"""

from __future__ import annotations

import torch

from harness.spec import Tolerance
from harness.specs.quantization._common import GroupQuantSpec, fp8_group_qdq


class PerTokenGroupQuantFp8Spec(GroupQuantSpec):
    id = "per_token_group_quant_fp8"
    catalog_rows = (65, 67)
    token_dim = 'T'
    title = "Per-token-group FP8 (e4m3) activation quantization, group 128"

    def qdq(self, x: torch.Tensor, group: int) -> torch.Tensor:
        return fp8_group_qdq(x, group)

    def tolerance(self, dtype: str) -> Tolerance:
        # e4m3 quantization noise itself is ~2.6e-2 of ||x||, so skipping quantization or a wrong group size lands
        # at >= 2.5e-2.  bf16 inputs often put x / s exactly on an fp8 rounding tie, so the two upstream formulas
        # (vLLM: s = amax * (1/448), x / s; SGLang: s = amax / 448, x * (1/s)) flip ties differently: SGLang's
        # formula measured 1.7e-3..3.9e-3 from this (vLLM-formula) reference on CPU emulation, seeds 0-3.
        return Tolerance(1e-2, "exact fp8 qdq emulated in ref (vLLM formula); slack for rounding-tie flips")


SPEC = PerTokenGroupQuantFp8Spec()
