"""Log-probabilities of selected tokens without materializing log_softmax (catalog row 49, vLLM v1 GPU worker
`_topk_log_softmax_kernel` via `compute_token_logprobs`, sample/logprob.py).

Math, row b and requested token ids k_0..k_{K-1} (the sampled token and the top-K candidates):

    out[b, j] = logits[b, k_j] - max_v logits[b, v] - log(sum_v exp(logits[b, v] - max))

Shapes: logits [B, V] fp32; token_ids [B, K] int64 (column 0 a random token, the rest the row's top K-1,
as vLLM asks for the sampled token plus num_logprobs top tokens); out [B, K] fp32.  K = 21 (the sampled token +
20, OpenAI's top_logprobs maximum).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.sampling._common import random_logits, sampling_cases

NUM_LOGPROBS = 21


class TokenLogprobsSpec(KernelSpec):
    id = "token_logprobs"
    category = "sampling"
    catalog_rows = (49,)
    token_dim = 'B'
    title = "Log-softmax at selected token ids (sampled + top-20), one pass over the vocabulary"
    dtypes: ClassVar[tuple[str, ...]] = ("fp32",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return [Case(c.model, c.regime, {**c.params, "K": NUM_LOGPROBS}) for c in sampling_cases(model, quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 9, "V": 1000, "K": 5}), Case("test", "test", {"B": 1, "V": 77, "K": 1})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 37, "V": 5000, "K": NUM_LOGPROBS})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "fp32":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: fp32")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        logits = random_logits(p["B"], p["V"], device, g)
        sampled = torch.randint(0, p["V"], (p["B"], 1), generator=g, device=device)
        top = torch.topk(logits, p["K"] - 1, dim=1).indices
        return {"logits": logits, "token_ids": torch.cat([sampled, top], dim=1).contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        ids = inputs["token_ids"]
        return torch.empty(ids.shape, dtype=torch.float32, device=ids.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        lp = torch.log_softmax(inputs["logits"].double(), dim=1)
        return torch.gather(lp, 1, inputs["token_ids"])

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 sum of V exps and one log: ~1e-6 relative on values of O(10); a missing max shift, a wrong
        # row or token gather is >= 1e-2.
        return Tolerance(1e-5, "fp32 logsumexp over the vocabulary")

    def flops(self, case: Case) -> float:
        p = case.params
        return 3.0 * p["B"] * p["V"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        # contract minimum: logits read once (an online max / sum needs one pass), token ids in, logprobs out
        return p["B"] * p["V"] * 4 + p["B"] * p["K"] * (8 + 4)


SPEC = TokenLogprobsSpec()
