"""Helion port of the EAGLE token index to sample after verification (catalog row 53; vLLM
`eagle_prepare_inputs_padded_kernel`, v1/spec_decode/utils.py).

    n_b = cu[b] - cu[b - 1] (cu inclusive, cu[-1] = 0);  rejected[b] = n_b + 1 - valid[b] if n_b > 0 else 0
    index[b] = query_start_loc[b + 1] - 1 - rejected[b]                 [B] int32 -> out [index (B) | rejected (B)]

One launch over request tiles; the two halves of the spec's buffer are written directly.  Latency-bound
(~20 bytes per request).
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
def eagle_inputs_padded_kernel(
    cu_num_draft: torch.Tensor,  # [B] int32 inclusive cumsum of draft counts
    valid_count: torch.Tensor,  # [B] int32
    query_start_loc: torch.Tensor,  # [B + 1] int32
    index_out: torch.Tensor,  # [B] int32, written (out[:B])
    rejected_out: torch.Tensor,  # [B] int32, written (out[B:])
) -> None:
    B = cu_num_draft.size(0)
    for tile_b in hl.tile(B):
        rows = tile_b.index
        cu = cu_num_draft[tile_b]
        prev = hl.load(cu_num_draft, [rows - 1], extra_mask=rows > 0)  # 0 for the first request
        drafts = cu - prev
        rejected = torch.where(drafts > 0, drafts + 1 - valid_count[tile_b], torch.zeros_like(drafts))
        end = hl.load(query_start_loc, [rows + 1])
        index_out[tile_b] = end - 1 - rejected
        rejected_out[tile_b] = rejected


class HelionEaglePrepareInputsPadded(HelionPort):
    kernel: ClassVar[str] = "eagle_prepare_inputs_padded"
    dtypes: ClassVar[tuple[str, ...] | None] = ("int32",)
    notes: ClassVar[tuple[str, ...]] = ("one launch writes both halves of the output",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"eagle_inputs_padded_kernel": {"block_sizes": [pow2_at_most(256, int(dims["B"]))], "num_warps": 4}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        b = inputs["valid_count"].shape[0]
        args = (inputs["cu_num_draft_tokens"], inputs["valid_count"], inputs["query_start_loc"], out[:b], out[b:])
        return [Launch(eagle_inputs_padded_kernel, args, adjust=rows_block(b))]


IMPL = HelionEaglePrepareInputsPadded()

if __name__ == "__main__":
    check_main(IMPL)
