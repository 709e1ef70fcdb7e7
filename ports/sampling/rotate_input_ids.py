"""Helion port of the EAGLE draft-extend input-id rotation (catalog row 58; SGLang `rotate_input_ids_kernel` via
`rotate_input_ids`, kernels/ops/speculative/multi_layer_eagle.py).

    out[s_b + i] = ids[s_b + i + 1] (i < n_b - 1);   out[s_b + n_b - 1] = topk_index[b]        [N] int64 -> [N] int64

Fusion: the upstream call is `out.copy_(ids)` then an in-place per-sequence rotation; here one launch reads
each sequence's shifted ids straight from the input and writes the output once (no copy).  Tiles: BLOCK_B
sequences x an inner loop up to the tile's longest sequence, masked per sequence (lengths 1..4 after a verify
step); every output slot belongs to one sequence, so each element is written exactly once.  Latency-bound (a few KB).
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
def rotate_input_ids_kernel(
    input_ids: torch.Tensor,  # [N] int64, sequences packed back to back
    starts: torch.Tensor,  # [B] int32 extend_start_loc
    lens: torch.Tensor,  # [B] int32 extend_seq_lens (>= 1)
    new_tokens: torch.Tensor,  # [B] int64 topk_index
    out: torch.Tensor,  # [N] int64, written
) -> None:
    B = starts.size(0)
    for tile_b in hl.tile(B):
        s = starts[tile_b].to(torch.int64)
        n = lens[tile_b].to(torch.int64)
        t = new_tokens[tile_b]
        longest = torch.amax(n, dim=0)
        for tile_i in hl.tile(0, longest):  # masked to each sequence's own length below
            dst = s[:, None] + tile_i.index[None, :]  # [tile_b, tile_i]
            end = (s + n)[:, None]
            inside = dst < end
            last = dst == end - 1
            shifted = hl.load(input_ids, [dst + 1], extra_mask=inside & ~last)
            hl.store(out, [dst], torch.where(last, t[:, None], shifted), extra_mask=inside)


class HelionRotateInputIds(HelionPort):
    kernel: ClassVar[str] = "rotate_input_ids"
    dtypes: ClassVar[tuple[str, ...] | None] = ("int64",)
    notes: ClassVar[tuple[str, ...]] = ("one launch input -> out (the upstream copies, then rotates in place)",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        # lengths are 1..4 (3 speculative steps + 1): one 4-wide inner step per sequence tile
        return {"rotate_input_ids_kernel": {"block_sizes": [pow2_at_most(128, int(dims["B"])), 4], "num_warps": 4}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        b = inputs["extend_start_loc"].shape[0]
        args = (inputs["input_ids"], inputs["extend_start_loc"], inputs["extend_seq_lens"], inputs["topk_index"], out)
        return [Launch(rotate_input_ids_kernel, args, adjust=rows_block(b))]


IMPL = HelionRotateInputIds()

if __name__ == "__main__":
    check_main(IMPL)
