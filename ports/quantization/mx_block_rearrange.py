"""Helion port of the MX block-scale swizzle (catalog row 71, vLLM `triton_mx_block_rearrange` ->
`triton_scale_swizzle`, qutlass_utils.py): the cuBLAS 128x4 block-scaling-factor layout.

    out_flat[((rb * PC/4 + cb) * 32 + r32) * 16 + rhi * 4 + c4] = s[rb*128 + rhi*32 + r32, cb*4 + c4]  (0 if OOB)
    s [R, C] uint8 -> out [PR, PC] uint8,  PR = ceil(R/128)*128, PC = ceil(C/4)*4

A byte permutation: each program writes a contiguous chunk of the output (one 128-row band rb, a run of
flat positions inside it) and gathers its source bytes from s (all within 128 rows x a few columns, L1/L2
resident), zero-filling the padding; the writes are fully coalesced 16-byte vectors.  Upstream runs one
program per 512-byte 128x4 tile; here a program covers up to 8 KB of a band.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms_2d, pow2_at_most, rows_block


@helion.kernel(static_shapes=False)
def mx_swizzle_kernel(
    s: torch.Tensor,  # [R * C] uint8, the row-major scales flattened
    out: torch.Tensor,  # [PR / 128, PC * 128] uint8 view of the [PR, PC] output, written
    rows: int,  # R
    cols: int,  # C
) -> None:
    NRB, W = out.size(0), out.size(1)
    for tile_b, tile_f in hl.tile([NRB, W]):
        f = tile_f.index  # flat position inside the band: ((cb * 32 + r32) * 16 + rhi * 4 + c4)
        cb = f // 512
        w = f % 512
        r = (w % 16) // 4 * 32 + w // 16  # row inside the band: rhi * 32 + r32
        c = cb * 4 + f % 4
        row = tile_b.index[:, None] * 128 + r[None, :]
        col = c[None, :] + 0 * row
        ok = (row < rows) & (col < cols)
        vals = hl.load(s, [torch.where(ok, row * cols + col, 0)], extra_mask=ok)
        out[tile_b, tile_f] = torch.where(ok, vals, 0).to(out.dtype)


def swizzle_config(nrb: int, w: int, target: int = 8192) -> dict[str, Any]:
    """[bands, bytes] tiles of ~`target` output bytes; smaller while under ~4 programs per SM (floor 512 B)."""
    bf = pow2_at_most(target, w, floor=512)
    bb, bf = fill_sms_2d(pow2_at_most(max(1, target // bf), nrb), bf, nrb, w, 512)
    return {"block_sizes": [bb, bf], "num_warps": 4 if bb * bf >= 4096 else 2, "num_stages": 1}


class HelionMxBlockRearrange(HelionPort):
    kernel: ClassVar[str] = "mx_block_rearrange"
    dtypes: ClassVar[tuple[str, ...] | None] = ("uint8",)
    notes: ClassVar[tuple[str, ...]] = (
        "one pass: contiguous output chunks per program, source bytes gathered, padding zero-filled in-kernel",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        r, c = int(dims["R"]), int(dims["C"])
        return {"mx_swizzle_kernel": swizzle_config(-(-r // 128), -(-c // 4) * 4 * 128)}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        s = inputs["scales"]
        assert isinstance(out, torch.Tensor) and out.is_contiguous() and s.is_contiguous()
        r, c = s.shape
        pr, pc = out.shape
        args = (s.view(-1), out.view(pr // 128, pc * 128), r, c)
        return [Launch(mx_swizzle_kernel, args, adjust=rows_block(pr // 128))]


IMPL = HelionMxBlockRearrange()

if __name__ == "__main__":
    check_main(IMPL)
