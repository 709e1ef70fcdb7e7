"""Repetition / frequency / presence penalties (catalog row 52, vLLM v1 GPU worker `_penalties_kernel` via
`apply_penalties`, sample/penalties.py).

Math, row t with request state i = mapping[t], output-token counts c = counts[i] and prompt-token set P_i:

    seen[v]  = v in P_i  or  c[v] > 0
    l'[v]    = l[v] / rep_i if l[v] > 0 else l[v] * rep_i      where seen[v]   (rep_i = 1: unchanged)
    out[t,v] = l'[v] - freq_i * c[v] - pres_i * (c[v] > 0)

Shapes: logits [B, V] fp32; mapping [B] int32 into per-request tables of R = 2B slots: repetition_penalty,
frequency_penalty, presence_penalty [R] fp32 (about a fifth of the requests neutral: 1, 0, 0 -> row untouched),
prompt_bin_mask [R, ceil(V/32)] int32 (bit j of word w = token 32w + j appeared in the prompt), output_bin_counts
[R, V] int32; out [B, V] fp32.  Plain decode: no speculative positions (expanded_local_pos = 0), so the kernel's
draft-token loop does not run.  The kernel works in place: an impl copies logits into the output buffer first.
"""

from __future__ import annotations

import math

import torch

from harness.spec import Case, Inputs, Tolerance
from harness.specs.sampling._common import LogitsSpec, random_logits

PROMPT_TOKENS = 256  # prompt tokens per request (drawn with replacement)
OUTPUT_TOKENS = 64  # generated tokens per request (drawn with replacement, each counted 1..3 times)


def unpack_bits(packed: torch.Tensor, v: int) -> torch.Tensor:
    """[R, ceil(V/32)] int32 -> [R, V] bool, bit j of word w = column 32w + j."""
    bits = (packed.to(torch.int64)[:, :, None] >> torch.arange(32, device=packed.device)) & 1
    return bits.reshape(packed.shape[0], -1)[:, :v].bool()


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    r, v = mask.shape
    words = math.ceil(v / 32)
    padded = torch.zeros(r, words * 32, dtype=torch.int64, device=mask.device)
    padded[:, :v] = mask.long()
    packed = (padded.view(r, words, 32) << torch.arange(32, device=mask.device)).sum(-1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


class PenaltiesSpec(LogitsSpec):
    id = "penalties"
    catalog_rows = (52,)
    token_dim = 'B'
    title = "Repetition, frequency and presence penalties on logits from per-request token statistics"
    CHECK_V = 20000

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 9, "V": 1000}), Case("test", "test", {"B": 1, "V": 300})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        b, v = p["B"], p["V"]
        r = 2 * b
        g = self.generator(dtype, device, seed)
        rep = 1.0 + 0.5 * torch.rand(r, generator=g, device=device)
        freq = 0.5 * torch.rand(r, generator=g, device=device)
        pres = 0.5 * torch.rand(r, generator=g, device=device)
        neutral = torch.rand(r, generator=g, device=device) < 0.2
        rep = torch.where(neutral, torch.ones_like(rep), rep)
        freq = torch.where(neutral, torch.zeros_like(freq), freq)
        pres = torch.where(neutral, torch.zeros_like(pres), pres)
        n_prompt, n_out = min(PROMPT_TOKENS, v // 4), min(OUTPUT_TOKENS, v // 4)
        prompt = torch.zeros(r, v, dtype=torch.bool, device=device)
        # token ids drawn with replacement (a repeat just sets the same bit / count again): cheap at V ~ 1e5
        prompt.scatter_(1, torch.randint(0, v, (r, n_prompt), generator=g, device=device), True)
        counts = torch.zeros(r, v, dtype=torch.int32, device=device)
        out_ids = torch.randint(0, v, (r, n_out), generator=g, device=device)
        counts.scatter_(1, out_ids, torch.randint(1, 4, (r, n_out), generator=g, device=device, dtype=torch.int32))
        return {"logits": random_logits(b, v, device, g),
                "mapping": torch.randperm(r, generator=g, device=device)[:b].to(torch.int32),
                "token_ids": torch.randint(0, v, (b,), generator=g, device=device),
                "local_pos": torch.zeros(b, dtype=torch.int32, device=device),
                "repetition_penalty": rep, "frequency_penalty": freq, "presence_penalty": pres,
                "prompt_bin_mask": pack_bits(prompt), "output_bin_counts": counts}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["logits"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        idx = inputs["mapping"].long()
        v = inputs["logits"].shape[1]
        logits = inputs["logits"].double()
        counts = inputs["output_bin_counts"][idx].double()
        out_mask = counts > 0
        seen = unpack_bits(inputs["prompt_bin_mask"][idx], v) | out_mask
        rep = inputs["repetition_penalty"][idx].double()[:, None]
        scale = torch.where(seen, rep, torch.ones_like(logits))
        logits = torch.where(logits > 0, logits / scale, logits * scale)
        logits = logits - inputs["frequency_penalty"][idx].double()[:, None] * counts
        return logits - inputs["presence_penalty"][idx].double()[:, None] * out_mask.double()

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 elementwise (the kernel multiplies by 1/rep, a one-ulp difference from dividing); a missed prompt
        # bit, a wrong request slot or a dropped penalty moves entries by O(0.1..1) on ~1% of the vocabulary,
        # i.e. >= 1e-3 rel. norm.
        return Tolerance(1e-5, "fp32 elementwise")

    def flops(self, case: Case) -> float:
        p = case.params
        return 6.0 * p["B"] * p["V"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        b, v = p["B"], p["V"]
        # contract minimum: logits read, out written, the B mapped rows of counts and packed prompt bits, mapping +
        # three gathered penalties per row (not the upstream's copy of the logits before its in-place kernel)
        return b * v * 4 * 3 + b * math.ceil(v / 32) * 4 + b * (4 + 3 * 4)


SPEC = PenaltiesSpec()
