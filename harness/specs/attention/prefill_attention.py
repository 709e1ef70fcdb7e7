"""Varlen causal prefill attention with GQA over packed (non-paged) Q/K/V (catalog rows 1 vLLM
`triton_prefill_attention._fwd_kernel`, 12 SGLang `prefill_attention._fwd_kernel`).

Math, per sequence b of length S_b, query token i, query head h, KV head h // (Hq / Hkv):

    out[i, h] = sum_{j <= i} softmax_j(q[i, h] . k[j, kv(h)] * D^-0.5) v[j, kv(h)]

Shapes: q [N, Hq, D], k/v [N, Hkv, D] with N = sum_b S_b packed; b_start_loc, b_seq_len [B] int32; out like q.
A prefill of T tokens is split into sequences of at most 8192 tokens (T=16384 -> two), ragged within a
case for the CPU tests.  Sliding-window and sink variants of the vLLM launcher are not benchmarked here.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import (
    attention_reference,
    attention_tolerance,
    gqa_heads,
    torch_dtype,
)

MAX_SEQ = 8192


def prefill_seq_lens(batch: int, seq: int, ragged: bool) -> list[int]:
    """The first sequence is `seq` long (= max_input_len); ragged ones shrink by a deterministic stride."""
    if not ragged:
        return [seq] * batch
    return [max(1, seq - (b * 37) % max(1, seq // 2)) if b else seq for b in range(batch)]


def _lens(p: dict) -> list[int]:
    return prefill_seq_lens(p["B"], p["S"], bool(p.get("ragged", 0)))


class PrefillAttentionSpec(KernelSpec):
    id = "prefill_attention"
    category = "attention"
    catalog_rows = (1, 12)
    token_dim = 'S'
    title = "Varlen causal prefill attention (GQA, packed Q/K/V)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = gqa_heads(model)
        if heads is None:
            return []
        out = []
        for t in model.tokens("prefill", quick=quick):
            s = min(t, MAX_SEQ)
            out.append(Case(model.name, "prefill", {"B": max(1, t // s), "S": s, "Hq": heads.q, "Hkv": heads.kv,
                                                     "D": heads.head_dim, "ragged": 0}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "S": 21, "Hq": 6, "Hkv": 2, "D": 32, "ragged": 1}),
                Case("test", "test", {"B": 1, "S": 9, "Hq": 2, "Hkv": 2, "D": 16, "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # D=128, group 4, lengths not multiples of either upstream's 128/64 tiles
        return [Case("check", "test", {"B": 3, "S": 300, "Hq": 8, "Hkv": 2, "D": 128, "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        lens = _lens(p)
        n = sum(lens)
        q = torch.randn(n, p["Hq"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        k = torch.randn(n, p["Hkv"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        v = torch.randn(n, p["Hkv"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        seq_len = torch.tensor(lens, dtype=torch.int32, device=device)
        start = torch.zeros_like(seq_len)
        start[1:] = torch.cumsum(seq_len, 0)[:-1]
        return {"q": q, "k": k, "v": v, "b_start_loc": start, "b_seq_len": seq_len, "max_input_len": max(lens),
                "sm_scale": 1.0 / math.sqrt(p["D"])}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        with exact_fp32():
            for s0, n in zip(inputs["b_start_loc"].tolist(), inputs["b_seq_len"].tolist()):
                sl = slice(s0, s0 + n)
                out[sl] = attention_reference(q[sl], k[sl], v[sl], inputs["sm_scale"], causal=True)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        pairs = sum(s * (s + 1) / 2 for s in _lens(p))  # causal (query, key) pairs
        return 4.0 * pairs * p["Hq"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        n = sum(_lens(p))
        return n * p["D"] * elt * (2.0 * p["Hq"] + 2.0 * p["Hkv"])


SPEC = PrefillAttentionSpec()
