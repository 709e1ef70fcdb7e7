"""Helion port of residual-add + RMSNorm, the Mamba block's fused add-norm (catalog row 76; mamba_ssm 2.3.2.post1
`rms_norm_fn` -> `_layer_norm_fwd_1pass_kernel` with residual, prenorm=True, residual_in_fp32=True).

    r'[t] = x[t] + r[t] (fp32);   y[t, j] = r'[t, j] * rsqrt(mean_j r'[t, j]^2 + eps) * w[j]
    x [T, H] bf16, r [T, H] fp32, w [H] bf16 -> y [T, H] bf16, residual_out [T, H] fp32

One pass per row, the whole row in registers: read x and r once, write r' (the next block's residual) and y,
with the sum of squares reduced in between (12 bytes per element, the minimum).  Tiles are [rows, H]: the row
is one persistent reduction block (next power of two >= H), rows share a program only for H < 1024; fp32 math,
one bf16 rounding of y.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, rows_block, sm_count


@helion.kernel(static_shapes=False)
def add_rms_norm_kernel(
    x: torch.Tensor,  # [T, H] bf16
    residual: torch.Tensor,  # [T, H] fp32
    weight: torch.Tensor,  # [H] bf16
    y: torch.Tensor,  # [T, H] bf16, written
    residual_out: torch.Tensor,  # [T, H] fp32, written
    eps: float,
) -> None:
    T = x.size(0)
    H = hl.specialize(x.size(1))
    for tile_t in hl.tile(T):
        r = x[tile_t, :].to(torch.float32) + residual[tile_t, :]
        residual_out[tile_t, :] = r
        rstd = torch.rsqrt(torch.sum(r * r, dim=-1) * (1.0 / H) + eps)
        y[tile_t, :] = (r * rstd[:, None] * weight[:].to(torch.float32)[None, :]).to(y.dtype)


def row_norm_config(rows: int, width: int) -> dict[str, Any]:
    """One row per program from H >= 1024 (rows share a program below, up to ~1K padded elements per tile);
    4 warps while the grid fills the SMs twice, up to one warp per 256 elements (4..16) when it does not
    (decode: latency-bound).  H200, H = 2560, T = 16384: 125 us at 2..16 warps alike (~4.0 TB/s, the upstream's
    time); H = 1024, T = 4096: 1 row / 4 warps 17.8 us, 4 rows / 8 warps 18.5 us."""
    wp = pow2_at_most(1 << 20, width)
    br = pow2_at_most(max(1, 1024 // wp), rows)
    programs = -(-rows // br)
    warps = 4 if programs >= 2 * sm_count() else max(4, min(16, br * wp // 256))
    return {"block_sizes": [br], "num_warps": warps, "num_stages": 1}


class HelionAddRmsNorm(HelionPort):
    kernel: ClassVar[str] = "add_rms_norm"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass per row: add, store fp32 residual_out, sum of squares, normalize, "
                                        "store y; whole row in registers",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"add_rms_norm_kernel": row_norm_config(int(dims["T"]), int(dims["H"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x, r, w = inputs["x"], inputs["residual"], inputs["weight"]
        args = (x, r, w, out["y"], out["residual_out"], float(case.params["eps"]))
        return [Launch(add_rms_norm_kernel, args, adjust=rows_block(x.shape[0]))]


IMPL = HelionAddRmsNorm()

if __name__ == "__main__":
    check_main(IMPL)
