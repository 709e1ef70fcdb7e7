"""Helion port of EAGLE next-token bookkeeping after verification (catalog row 54; vLLM
`eagle_prepare_next_token_padded_kernel`, v1/spec_decode/utils.py).

    valid[b] = #{j : sampled[b, j] != -1 and < V};  next[b] = last valid sampled[b, j], or backup[b] when none
    is valid or the request is discarded (then valid[b] = 0)        sampled [B, S] int32 -> out [next (B) | valid (B)]

One launch, [BLOCK_B, S] tiles (S = drafts + 1 = 4 columns per request, a 16-byte row); the two halves of the
spec's buffer are written directly; the bool discard mask is passed as a
zero-copy uint8 view (the kit's sm_90 compile check has no bool argument type).  Latency-bound (~25 bytes per request).
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
def eagle_next_token_kernel(
    sampled: torch.Tensor,  # [B, S] int32, -1 = rejected slot
    discard: torch.Tensor,  # [B] uint8 view of the bool discard mask
    backup: torch.Tensor,  # [B] int32
    next_out: torch.Tensor,  # [B] int32, written (out[:B])
    valid_out: torch.Tensor,  # [B] int32, written (out[B:])
    vocab: int,
) -> None:
    B = sampled.size(0)
    for tile_b in hl.tile(B):
        s = sampled[tile_b, :]  # [tile_b, S]
        cols = hl.arange(s.size(1))[None, :].to(torch.int32)
        ok = (s != -1) & (s < vocab)
        valid = torch.sum(ok.to(torch.int32), dim=1)
        last = torch.amax(torch.where(ok, cols, torch.full_like(cols, -1)), dim=1)
        last_tok = torch.sum(torch.where(cols == last[:, None], s, torch.zeros_like(s)), dim=1)
        drop = discard[tile_b] != 0
        next_out[tile_b] = torch.where(drop | (valid == 0), backup[tile_b], last_tok)
        valid_out[tile_b] = torch.where(drop, torch.zeros_like(valid), valid)


class HelionEaglePrepareNextToken(HelionPort):
    kernel: ClassVar[str] = "eagle_prepare_next_token"
    dtypes: ClassVar[tuple[str, ...] | None] = ("int32",)
    notes: ClassVar[tuple[str, ...]] = ("one launch writes both halves of the output",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"eagle_next_token_kernel": {"block_sizes": [pow2_at_most(128, int(dims["B"]))], "num_warps": 4}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        b = inputs["sampled_token_ids"].shape[0]
        args = (inputs["sampled_token_ids"], inputs["discard_request_mask"].view(torch.uint8),
                inputs["backup_next_token_ids"],
                out[:b], out[b:], int(case.params["V"]))
        return [Launch(eagle_next_token_kernel, args, adjust=rows_block(b))]


IMPL = HelionEaglePrepareNextToken()

if __name__ == "__main__":
    check_main(IMPL)
