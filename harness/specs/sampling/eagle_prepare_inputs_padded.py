"""EAGLE token index to sample after verification (catalog row 53, vLLM `eagle_prepare_inputs_padded_kernel`,
v1/spec_decode/utils.py).  Batch layout and both formulas: see eagle_prepare_next_token.py; this kernel's:

    rejected[b] = n_b + 1 - valid[b] if n_b > 0 else 0;   index[b] = query_start_loc[b + 1] - 1 - rejected[b]
    out = [index (B) | rejected (B)] int32      (exact)
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs
from harness.specs.sampling._common import EagleSpec


class EaglePrepareInputsPaddedSpec(EagleSpec):
    id = "eagle_prepare_inputs_padded"
    catalog_rows = (53,)
    token_dim = 'B'
    title = "EAGLE token index to sample and rejected-token counts after verification"

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        cu = inputs["cu_num_draft_tokens"].long()
        drafts = cu - torch.cat([cu.new_zeros(1), cu[:-1]])
        valid = inputs["valid_count"].long()
        rejected = torch.where(drafts > 0, drafts + 1 - valid, torch.zeros_like(drafts))
        index = inputs["query_start_loc"].long()[1:] - 1 - rejected
        return torch.cat([index, rejected]).double()

    def bytes(self, case: Case, dtype: str) -> float:
        return case.params["B"] * 4 * 5.0


SPEC = EaglePrepareInputsPaddedSpec()
