"""Combined top-k / top-p masking of logits (catalog row 48, vLLM `apply_top_k_top_p_triton`,
v1/sample/ops/topk_topp_triton.py: Qrita pivot-based selection).

Math, row b with k_b and p_b (top-k first, by logit value; then top-p over the survivors, by probability):

    K_b   = the k_b largest logits (all of them when k_b >= V)
    q     = softmax over K_b;  sort K_b by q descending
    keep  = tokens of K_b whose preceding probability mass (strictly larger tokens) is < p_b  (all when p_b = 1)
    out[b, v] = logits[b, v] if v kept else FILTERED

This is vLLM's torch reference (`apply_top_k_top_p`: mask where the ascending cumulative probability is
<= 1 - p, never the top token).  Shapes: logits [B, V] fp32; k [B] int32 (V = disabled); p [B] fp32 (1 =
disabled); out [B, V] fp32.  Rows mix top-k only (k in [1, 200], p = 1), top-p only (k = V, p drawn in
[0.5, 0.99]) and both.

Inputs keep both decisions clear of rounding (`clear_of_boundaries`): k never splits tied logits, and p sits in
the middle of the gap between the preceding masses of the last kept and the first dropped token.  A kernel sums
the probabilities in fp32 (vLLM's too), ~1e-7 off the fp64 masses: with p drawn freely, about one check case in
200 (37 x 5000, N(0, 3^2) logits) had a preceding mass within 1e-7 of p, where a correct kernel decides on a coin
flip (the Helion port's one wrong decision on the H200 gate; on CPU at seed 1879, 6e-8 = one fp32 ulp).  Moved, p is
>= 136 fp32 ulps from every preceding mass at the check case (300 seeds), >= 16 at 32 x 202048.  A kernel keeping
one token too many or too few (an inclusive cumulative sum, k off by one) still changes the kept set.

Output contract: the launcher's mask_value is set to FILTERED = -1e4 (the checker rejects Inf); the kernel works
in place, so an impl copies the logits into the output buffer first.  Tolerance as for min_p: one wrong keep /
drop decision fails the check case, a few at the largest cases do not.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Tolerance
from harness.specs.sampling._common import LogitsSpec, random_logits
from harness.specs.sampling.min_p import FILTERED

MAX_K = 200


def sorted_masses(logits: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """fp64 logits [B, V], k [B] -> each row sorted descending (values, indices), the top-k mask over the sorted
    row, the softmax over the top k and each token's preceding mass (sum of the probabilities before it)."""
    srt, idx = logits.sort(dim=1, descending=True)
    keep_k = torch.arange(logits.shape[1], device=logits.device)[None, :] < k.long()[:, None]
    probs = torch.softmax(torch.where(keep_k, srt, torch.full_like(srt, float("-inf"))), dim=1)
    return srt, idx, keep_k, probs, torch.cumsum(probs, dim=1) - probs


def clear_of_boundaries(logits: torch.Tensor, k: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, p) moved off the two decision boundaries, keeping what each row keeps except for ties:

    * k grows over the logits tied with the k-th largest (the k-th and k+1-th values differ: a kernel selecting
      by value, as vLLM's torch reference does, and one counting k in sort order keep the same set);
    * p < 1 moves to the middle of the gap it falls in: with the last kept token n (after joining the tokens tied
      with it) p = mass before n + half n's probability, so the preceding mass of every kept token is below p
      and that of every dropped one above it by at least half the boundary token's probability (fp64)."""
    x = logits.double()
    srt = x.sort(dim=1, descending=True).values
    k = (x >= srt.gather(1, k.long()[:, None] - 1)).sum(dim=1)
    _, _, keep_k, probs, before = sorted_masses(x, k)
    n = (keep_k & (before < p.double()[:, None])).sum(dim=1, keepdim=True)  # >= 1: the top token's mass before is 0
    n = (x >= srt.gather(1, n - 1)).sum(dim=1, keepdim=True)
    mid = before.gather(1, n - 1) + 0.5 * probs.gather(1, n - 1)
    return k.to(torch.int32), torch.where(p < 1.0, mid[:, 0].float(), p)


class TopKTopPSpec(LogitsSpec):
    id = "top_k_top_p"
    catalog_rows = (48,)
    token_dim = 'B'
    title = "Top-k then top-p masking of logits (filtered entries stored as -1e4)"
    #: k is drawn with the logits (moved off tied values, and p's position depends on it): the gate's rewrite
    #: refreshes all three together, so rewritten inputs keep the same clearance
    prepared_inputs = ()

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 9, "V": 1000}), Case("test", "test", {"B": 1, "V": 77})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p_ = case.params
        b, v = p_["B"], p_["V"]
        g = self.generator(dtype, device, seed)
        k = torch.randint(1, min(MAX_K, v) + 1, (b,), generator=g, device=device, dtype=torch.int32)
        p = 0.5 + 0.49 * torch.rand(b, generator=g, device=device)
        kind = torch.rand(b, generator=g, device=device)
        k = torch.where(kind < 0.3, torch.full_like(k, v), k)  # top-p only
        p = torch.where((kind >= 0.3) & (kind < 0.7), torch.ones_like(p), p)  # top-k only
        logits = random_logits(b, v, device, g)
        k, p = clear_of_boundaries(logits, k, p)
        return {"logits": logits, "k": k, "p": p}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["logits"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        logits = inputs["logits"].double()
        p = inputs["p"].double()[:, None]
        srt, idx, keep_k, probs, before = sorted_masses(logits, inputs["k"])
        keep = keep_k & ((p >= 1.0) | (before < p))
        keep[:, 0] = True
        mask = torch.zeros_like(keep).scatter_(1, idx, keep)
        return torch.where(mask, logits, torch.full_like(logits, FILTERED))

    def tolerance(self, dtype: str) -> Tolerance:
        # see min_p: a single wrong decision is 2.3e-3 at the check case, ~1e-4 at 512 x 262k
        return Tolerance(1e-3, f"pass-through values; filtered entries = {FILTERED:g}; slack for boundary ulps")

    def flops(self, case: Case) -> float:
        p = case.params
        return 4.0 * p["B"] * p["V"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        # contract minimum: logits read once, out written once, k and p per row (not the upstream's copy into
        # out and its pivot-search passes)
        return p["B"] * p["V"] * 4 * 2 + p["B"] * (4 + 4)


SPEC = TopKTopPSpec()
