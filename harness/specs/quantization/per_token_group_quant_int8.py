"""Per-token-group INT8 activation quantization (catalog rows 62 vLLM `_per_token_group_quant_int8`,
64 SGLang `_per_token_group_quant_int8`).

Math, per token t and group g of G consecutive columns:

    s[t, g] = max(max_i |x[t, gG + i]|, 1e-10) / 127
    q[t, gG + i] = int8(clamp(x[t, gG + i] / s[t, g], -128, 127))     (Triton's float->int cast: toward zero)

Both upstream kernels end with `.to(int8)` and no rounding, so truncation is the contract (a rounding impl is
off by up to one step and fails).  Shapes: x [T, H] bf16.

Outputs (the kernel's own results, written by the timed call; no dequant epilogue):
    "q"  [T, H] int8, contiguous
    "s"  [T, H / G] fp32, row-major (what both upstream launchers allocate)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.spec import Tolerance
from harness.specs.quantization._common import (
    INT8_Q_ROW_REL,
    INT8_Q_ROW_SOURCE,
    SCALE_TOL,
    GroupQuantSpec,
    int8_group_quant,
)


class PerTokenGroupQuantInt8Spec(GroupQuantSpec):
    id = "per_token_group_quant_int8"
    catalog_rows = (62, 64)
    token_dim = 'T'
    title = "Per-token-group INT8 activation quantization, group 128 (truncating cast)"
    Q_DTYPE: ClassVar[torch.dtype] = torch.int8

    def quant(self, x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
        return int8_group_quant(x, group)

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # The group's max element sits at x / s = 127 * (1 +- 1 ulp): a device division that is not IEEE
        # round-to-nearest can truncate it to 126 instead, one step per group (2e-3 of q's norm); rounding instead
        # of truncating lands 1.55e-2 away, so the bound leaves room for the flips and still rejects it by 3x.
        return {"q": Tolerance(5e-3, "exact int8 quant emulated in ref; slack for x/s one-ulp truncation flips "
                                     "(every group's max flipped: 2e-3; rounding instead of truncating 1.55e-2)",
                               row_rel=INT8_Q_ROW_REL, row_source=INT8_Q_ROW_SOURCE),
                "s": SCALE_TOL}


SPEC = PerTokenGroupQuantInt8Spec()
