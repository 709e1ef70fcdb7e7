"""EAGLE speculative-decoding bookkeeping after verification (catalog row 54, vLLM
`eagle_prepare_next_token_padded_kernel`, v1/spec_decode/utils.py; row 53 is eagle_prepare_inputs_padded.py).

Two specs in this file share the batch layout: B requests, each verified d = 3 draft tokens (some requests have
no drafts: d = 0), so the target sampled S = 4 tokens per request; accepted tokens come first, rejected slots
are -1.

eagle_prepare_next_token (row 54), per request b:
    valid[b] = #(sampled[b, j] != -1 and < V);  next[b] = last valid sampled token, or backup[b] when none is
    valid or the request is discarded (then valid[b] = 0)
    out = [next (B) | valid (B)] int32

eagle_prepare_inputs_padded (row 53), per request b with n_b = draft count (cu_num_draft_tokens is inclusive):
    rejected[b] = n_b + 1 - valid[b] if n_b > 0 else 0;   index[b] = query_start_loc[b + 1] - 1 - rejected[b]
    out = [index (B) | rejected (B)] int32

Both are exact; the impls write the two halves of the spec's buffer directly.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs
from harness.specs.sampling._common import DRAFTS, EagleSpec


class EaglePrepareNextTokenSpec(EagleSpec):
    id = "eagle_prepare_next_token"
    catalog_rows = (54,)
    token_dim = 'B'
    title = "EAGLE next-token ids and valid-token counts after verification"

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        s = inputs["sampled_token_ids"].long()
        is_valid = (s != -1) & (s < case.params["V"])
        valid = is_valid.sum(1)
        cols = torch.arange(s.shape[1], device=s.device)[None, :]
        last = torch.where(is_valid, cols, torch.full_like(cols, -1)).amax(1)
        last_tok = torch.gather(s, 1, last.clamp_min(0)[:, None])[:, 0]
        backup = inputs["backup_next_token_ids"].long()
        discard = inputs["discard_request_mask"]
        nxt = torch.where(discard | (valid == 0), backup, last_tok)
        valid = torch.where(discard, torch.zeros_like(valid), valid)
        return torch.cat([nxt, valid]).double()

    def bytes(self, case: Case, dtype: str) -> float:
        b = case.params["B"]
        return b * ((DRAFTS + 1) * 4 + 1 + 4 + 4 + 4)


SPEC = EaglePrepareNextTokenSpec()
