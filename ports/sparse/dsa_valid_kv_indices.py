"""Helion port of the DSA top-k index compaction (catalog row 35, SGLang `dsa/triton_kernel.
_get_valid_kv_indices_kernel` via `get_valid_kv_indices`).

    kv_indices[kv_indptr[b] : kv_indptr[b + 1]] = page_table_1[b][page_table_1[b] != -1]   (order kept)
    page_table_1 [B, topk] int32 (-1 = empty), kv_indptr [B + 1] int32 -> out [nnz] int32

One pass, memory-bound at large B (4 * topk bytes read and <= 4 * topk written per row): a program owns whole
rows (topk is a compile-time dim), a row-wise prefix count of the valid slots gives each survivor its place,
and one masked scatter store writes it at kv_indptr[b] + place.  No host sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, rows_block


@helion.kernel(static_shapes=False)
def dsa_valid_kv_indices_kernel(
    table: torch.Tensor,  # [B, topk] int32, -1 = no token
    kv_indptr: torch.Tensor,  # [B + 1] int32
    out: torch.Tensor,  # [nnz] int32, written
) -> None:
    B = table.size(0)
    hl.specialize(table.size(1))  # topk: whole rows per tile
    for tile_b in hl.tile(B):
        row = table[tile_b, :]  # [bb, topk]
        valid = row != -1
        place = torch.cumsum(valid.to(torch.int32), dim=1) - 1  # inclusive count - 1 = place among survivors
        start = kv_indptr[tile_b]
        hl.store(out, [start[:, None] + place], row, extra_mask=valid)


def rows_config(b: int, topk: int) -> dict[str, Any]:
    """Whole rows; several rows per program only when B leaves the grid over two waves of programs."""
    br = pow2_at_most(max(1, 4096 // max(1, topk)), b)
    while br > 1 and -(-b // br) < 2 * 132:
        br //= 2
    return {"block_sizes": [br], "num_warps": 4 if br * topk <= 2048 else 8}


class HelionDsaValidKvIndices(HelionPort):
    kernel: ClassVar[str] = "dsa_valid_kv_indices"
    dtypes: ClassVar[tuple[str, ...] | None] = ("int32",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: whole rows, in-register prefix count, masked scatter store",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"dsa_valid_kv_indices_kernel": rows_config(int(dims["B"]), int(dims["topk"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        table = inputs["page_table_1"]
        return [Launch(dsa_valid_kv_indices_kernel, (table, inputs["kv_indptr"], out),
                       adjust=rows_block(table.shape[0]))]


IMPL = HelionDsaValidKvIndices()

if __name__ == "__main__":
    check_main(IMPL)
