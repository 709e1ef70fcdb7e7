"""Helion port of the gated RMSNorm of the Mamba-2 mixer (catalog row 77; vLLM 0.33.0
`mamba/ops/layernorm_gated._layer_norm_fwd_1pass_kernel` and mamba_ssm's copy of it, norm_before_gate=False).

    u = x * silu(z);   y[t, gG + i] = u[t, gG + i] * rsqrt(mean_i u[t, gG + i]^2 + eps) * w[gG + i]
    x, z [T, D] bf16, w [D] bf16 -> y [T, D] bf16, groups of G columns (D / G groups per row)

One pass: x and z are read once, the gated product stays in registers for the group's sum of squares and the
normalization, y is written once (6 bytes per element).  The rows are viewed as [T, D / G, G] (free views) and
tiled [rows, groups, G]: a whole group is one persistent reduction block, one group per program for
G >= 1024, several groups or rows share a program when G is small; fp32 math, one bf16 rounding.
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
def rms_norm_gated_kernel(
    x: torch.Tensor,  # [T, NG, G] bf16 (view of [T, D])
    z: torch.Tensor,  # [T, NG, G] bf16
    weight: torch.Tensor,  # [NG, G] bf16
    out: torch.Tensor,  # [T, NG, G] bf16, written
    eps: float,
) -> None:
    T = x.size(0)
    NG = hl.specialize(x.size(1))
    G = hl.specialize(x.size(2))
    for tile_t, tile_g in hl.tile([T, NG]):
        xv = x[tile_t, tile_g, :].to(torch.float32)
        zv = z[tile_t, tile_g, :].to(torch.float32)
        u = xv * (zv * torch.sigmoid(zv))
        rstd = torch.rsqrt(torch.sum(u * u, dim=-1) * (1.0 / G) + eps)
        w = weight[tile_g, :].to(torch.float32)
        out[tile_t, tile_g, :] = (u * rstd[:, :, None] * w[None, :, :]).to(out.dtype)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    """One group per program when G >= 1024 (more, smaller programs keep more loads in flight per SM), else
    groups and then rows up to ~1K padded elements per tile; 4 warps while the grid fills the SMs twice (H200,
    T = 16384, G = 5120: 4 warps 129 us, 8 warps 155 us, 16 warps 162 us), more warps (up to one per 256
    elements) when it does not (decode rows: latency-bound, a wider program finishes sooner)."""
    t, d, g = int(dims["T"]), int(dims["D"]), int(dims["G"])
    gp = pow2_at_most(1 << 20, g)
    ng = max(1, d // g)
    bg = pow2_at_most(max(1, 1024 // gp), ng)
    bt = pow2_at_most(max(1, 1024 // (gp * bg)), t)
    programs = -(-t // bt) * -(-ng // bg)
    warps = 4 if programs >= 2 * sm_count() else max(4, min(32, bt * bg * gp // 256))
    return {"rms_norm_gated_kernel": {"block_sizes": [bt, bg], "num_warps": warps, "num_stages": 1}}


class HelionRmsNormGated(HelionPort):
    kernel: ClassVar[str] = "rms_norm_gated"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: x * silu(z), group sum of squares, normalize, weight; whole "
                                        "group in registers",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, z, w = inputs["x"], inputs["z"], inputs["weight"]
        t, d = x.shape
        g = int(case.params["G"])
        if d % g:
            raise ValueError(f"group size {g} must divide D = {d}")
        ng = d // g
        args = (x.view(t, ng, g), z.view(t, ng, g), w.view(ng, g), out.view(t, ng, g), float(case.params["eps"]))
        return [Launch(rms_norm_gated_kernel, args, adjust=rows_block(t))]


IMPL = HelionRmsNormGated()

if __name__ == "__main__":
    check_main(IMPL)
