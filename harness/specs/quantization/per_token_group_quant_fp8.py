"""Per-token-group FP8 activation quantization (catalog rows 65 vLLM `_per_token_group_quant_fp8`, 67 SGLang
`_per_token_group_quant_8bit`; row 70, SGLang's `_per_token_group_quant_8bit_colmajor`, is the same launcher with
column_major_scales=True and is not a separate row here: one provider name per upstream).

Math, per token t and group g of G consecutive columns (G = 128, DeepSeek-V3-style block fp8):

    s[t, g] = max(max_i |x[t, gG + i]|, 1e-10) / 448
    q[t, gG + i] = float8_e4m3fn(clamp(x[t, gG + i] / s[t, g], -448, 448))      (round to nearest even)

Shapes: x [T, H] bf16 (H = hidden_size, a multiple of G).

Outputs (the kernel's own results, written by the timed call; no dequant epilogue):
    "q"  [T, H] float8_e4m3fn, contiguous
    "s"  [T, H / G] fp32, row-major (what both upstream launchers allocate for column_major_scales=False)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.spec import Tolerance
from harness.specs.quantization._common import (
    FP8_Q_ROW_REL,
    FP8_Q_ROW_SOURCE,
    SCALE_TOL,
    GroupQuantSpec,
    fp8_group_quant,
)


class PerTokenGroupQuantFp8Spec(GroupQuantSpec):
    id = "per_token_group_quant_fp8"
    catalog_rows = (65, 67)
    token_dim = 'T'
    title = "Per-token-group FP8 (e4m3) activation quantization, group 128"
    Q_DTYPE: ClassVar[torch.dtype] = torch.float8_e4m3fn

    def quant(self, x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
        return fp8_group_quant(x, group)

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # bf16 inputs often put x / s exactly on an fp8 rounding tie, so the two upstream formulas (vLLM:
        # s = amax * (1/448), x / s; SGLang: s = amax / 448, x * (1/s)) flip ties differently: the SGLang formula's
        # q is 1.9e-3..3.6e-3 from this (vLLM-formula) reference; see _common.py for the per-row bound.
        return {"q": Tolerance(1e-2, "exact fp8 quant emulated in ref (vLLM formula); slack for rounding-tie flips "
                                     "(SGLang formula 3.6e-3; no quantization 2.6e-2)",
                               row_rel=FP8_Q_ROW_REL, row_source=FP8_Q_ROW_SOURCE),
                "s": SCALE_TOL}


SPEC = PerTokenGroupQuantFp8Spec()
