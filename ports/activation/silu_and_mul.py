"""Helion port of SiLU-and-mul (catalog row 74; SGLang 0.5.23 `act_and_mul_kernel` via `act_and_mul_triton`).

    out[r, j] = silu(x[r, j]) * x[r, N + j]        x [R, 2N] bf16 -> out [R, N] bf16

One pass, memory-bound (6 bytes per output element).  The gate and up halves are two strided views of x (no
copy); the product is computed in fp32 and rounded once (the upstream rounds silu(gate) to bf16 first: one
rounding fewer here).  Tiles: `row_tile` (the kit's memory-bound heuristic): the column block as wide as N allows,
rows up to 8K elements per tile, fewer when that would leave SMs idle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, row_tile


@helion.kernel(static_shapes=False)
def silu_and_mul_kernel(
    gate: torch.Tensor,  # [R, N] bf16 view of x[:, :N]
    up: torch.Tensor,  # [R, N] bf16 view of x[:, N:]
    out: torch.Tensor,  # [R, N] bf16, written
) -> None:
    R, N = out.size(0), out.size(1)
    for tile_r, tile_n in hl.tile([R, N]):
        g = gate[tile_r, tile_n].to(torch.float32)
        u = up[tile_r, tile_n].to(torch.float32)
        out[tile_r, tile_n] = (g * torch.sigmoid(g) * u).to(out.dtype)


class HelionSiluAndMul(HelionPort):
    kernel: ClassVar[str] = "silu_and_mul"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: gate and up read as strided views of x, fp32 math, one rounding",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"silu_and_mul_kernel": row_tile(int(dims["R"]), int(dims["N"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        x = inputs["x"]
        assert isinstance(out, torch.Tensor)
        n = x.shape[1] // 2
        if x.shape[1] != 2 * n or tuple(out.shape) != (x.shape[0], n):
            raise ValueError(f"x must be [R, 2N] and out [R, N], got {tuple(x.shape)} -> {tuple(out.shape)}")
        return [Launch(silu_and_mul_kernel, (x[:, :n], x[:, n:], out))]


IMPL = HelionSiluAndMul()

if __name__ == "__main__":
    check_main(IMPL)
