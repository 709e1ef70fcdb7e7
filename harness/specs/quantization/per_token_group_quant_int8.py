"""Per-token-group INT8 activation quantization (catalog rows 62 vLLM `_per_token_group_quant_int8`,
64 SGLang `_per_token_group_quant_int8`).

Math, per token t and group g of G consecutive columns:

    s[t, g] = max(max_i |x[t, gG + i]|, 1e-10) / 127
    q[t, gG + i] = int8(clamp(x[t, gG + i] / s[t, g], -128, 127))     (Triton's float->int cast: toward zero)

Both upstream kernels end with `.to(int8)` and no rounding, so truncation is the contract (a rounding impl is
off by up to one step and fails).  Shapes: x [T, H] bf16; q [T, H] int8; s [T, H / G] fp32.

Output contract: out [T, H] fp32 = float(q) * s per group, written by the impl after the kernel in the same call
(torch epilogue `dequantize_groups_into`, identical for every provider; see _common.py).
"""

from __future__ import annotations

import torch

from harness.spec import Tolerance
from harness.specs.quantization._common import GroupQuantSpec, int8_group_qdq


class PerTokenGroupQuantInt8Spec(GroupQuantSpec):
    id = "per_token_group_quant_int8"
    catalog_rows = (62, 64)
    token_dim = 'T'
    title = "Per-token-group INT8 activation quantization, group 128 (truncating cast)"

    def qdq(self, x: torch.Tensor, group: int) -> torch.Tensor:
        return int8_group_qdq(x, group)

    def tolerance(self, dtype: str) -> Tolerance:
        # int8 truncation noise is ~1.3e-2 of ||x|| and rounding instead of truncating lands ~1.6e-2 away (CPU
        # emulation).  The group's max element sits at x / s = 127 * (1 +- 1 ulp): a device division that is not
        # IEEE round-to-nearest can truncate it to 126 instead, one step (~2e-3 of a group's norm) per group, so
        # the bound leaves room for that and still rejects both bugs by 3x.
        return Tolerance(5e-3, "exact int8 qdq emulated in ref; slack for x/s one-ulp truncation flips")


SPEC = PerTokenGroupQuantInt8Spec()
