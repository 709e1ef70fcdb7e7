"""Helion port of the ragged-append index builder (catalog row 86, FlashInfer
`get_batch_indices_positions_kernel` via `flashinfer.page.get_batch_indices_positions`).

    for b, i in append_indptr[b] <= i < append_indptr[b + 1]:
        batch_indices[i] = b,   positions[i] = seq_lens[b] - (append_indptr[b + 1] - i)
    append_indptr [B + 1] int32, seq_lens [B] int32 -> out [2, nnz] int32 (row 0 batch, row 1 position)

Pure stores (8 bytes per appended token + 8 per request), latency-bound at every real size.  A program owns a
tile of requests and walks their appended tokens with a jagged inner loop ([requests, tokens] tiles, lanes past
each request's count masked), so decode (many one-token requests) packs many requests per program and prefill
(few long requests) walks wide token tiles.  No host sync: nnz is only the output's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most


@helion.kernel(static_shapes=False)
def batch_indices_positions_kernel(
    append_indptr: torch.Tensor,  # [B + 1] int32
    seq_lens: torch.Tensor,  # [B] int32
    batch_out: torch.Tensor,  # [nnz] int32 (row 0 of the output), written
    pos_out: torch.Tensor,  # [nnz] int32 (row 1 of the output), written
) -> None:
    B = seq_lens.size(0)
    for tile_b in hl.tile(B):
        start = append_indptr[tile_b]
        end = hl.load(append_indptr, [tile_b.index + 1])
        lens = seq_lens[tile_b]
        counts = end - start
        longest = torch.amax(counts, dim=0)
        for tile_k in hl.tile(longest):
            inside = tile_k.index[None, :] < counts[:, None]  # [bb, bk]
            idx = start[:, None] + tile_k.index[None, :]  # token ids
            hl.store(batch_out, [idx], (tile_b.index[:, None] + 0 * idx).to(torch.int32), extra_mask=inside)
            hl.store(pos_out, [idx], (lens[:, None] - (end[:, None] - idx)).to(torch.int32), extra_mask=inside)


def index_config(b: int, q: int, target: int = 2048) -> dict[str, Any]:
    """[requests, tokens] tiles: token block as wide as the longest append (up to 1024), requests fill the rest
    of ~`target` lanes; a latency-bound kernel, so one small wave of programs."""
    bk = pow2_at_most(1024, q, floor=16)
    bb = pow2_at_most(max(1, target // bk), b)
    return {"block_sizes": [bb, bk], "num_warps": 4}


class HelionBatchIndicesPositions(HelionPort):
    kernel: ClassVar[str] = "batch_indices_positions"
    dtypes: ClassVar[tuple[str, ...] | None] = ("int32",)
    notes: ClassVar[tuple[str, ...]] = ("one launch: request tiles x jagged token tiles, both output rows written "
                                        "in the same pass",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"batch_indices_positions_kernel": index_config(int(dims["B"]), int(dims["Q"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        return [Launch(batch_indices_positions_kernel, (inputs["append_indptr"], inputs["seq_lens"], out[0], out[1]))]


IMPL = HelionBatchIndicesPositions()

if __name__ == "__main__":
    check_main(IMPL)
