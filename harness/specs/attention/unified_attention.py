"""Paged attention over a mixed batch: each sequence brings q_len new query tokens on top of its cached
context, causal (catalog rows 13 vLLM `kernel_unified_attention` 2D/3D + `reduce_segments`, 80 vLLM unified
attention, 81 SGLang extend attention; the decode-only case is the same math as paged_decode_attention).

Math, per sequence b with KV length L_b (the context plus its own q_len_b new tokens, already in the cache, as
vLLM writes the KV cache before attention) and query token i < q_len_b, query head h:

    out[i, h] = softmax_{j <= L_b - q_len_b + i}(q[i, h] . K_b[j, kv(h)] * D^-0.5) @ V_b[:, kv(h)]

Shapes: q [N, Hq, D] packed (N = sum q_len_b), cu_seqlens_q [B + 1] int32, k_cache/v_cache [num_blocks, 16,
Hkv, D], block_table [B, max_blocks] int32, seq_lens [B] int32 (= L_b), out like q.
Regimes: decode (q_len 1, B from decode tokens x L from kv_lens, capped like paged_decode_attention) and
chunked prefill (q_len = min(T, 8192) new tokens per sequence on as many cached context tokens).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import (
    MAX_DECODE_KV_TOKENS,
    PagedKV,
    attention_reference,
    attention_tolerance,
    build_paged_kv,
    causal_chunk_flops,
    chunk_attention_bytes,
    decode_kv_lens,
    gather_kv,
    gqa_heads,
    torch_dtype,
)
from harness.specs.attention.paged_decode_attention import PAGE_SIZE, decode_seq_lens

MAX_CHUNK = 8192


def lengths(p: dict) -> tuple[list[int], list[int]]:
    """(q_lens, kv_lens) of a case: decode-style ragged kv lens; q_len Q for every sequence, clipped to its
    kv length; the first sequence has the longest of both (max_seqlen_q / max_seqlen_k)."""
    kv = decode_seq_lens(p["B"], p["L"])
    q = [min(p["Q"] - (b % 3 if p.get("ragged", 0) else 0), n) for b, n in enumerate(kv)]
    return [max(1, x) for x in q], kv


class UnifiedAttentionSpec(KernelSpec):
    id = "unified_attention"
    category = "attention"
    catalog_rows = (13, 80, 81)
    token_dim = 'B'
    title = "Paged causal attention over a mixed decode / chunked-prefill batch (GQA)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = gqa_heads(model)
        if heads is None:
            return []
        dims = {"Hq": heads.q, "Hkv": heads.kv, "D": heads.head_dim, "ragged": 0}
        out = []
        for b in model.tokens("decode", quick=quick):
            for kv in decode_kv_lens(model, quick):
                if b * kv <= MAX_DECODE_KV_TOKENS:
                    out.append(Case(model.name, "decode", {"B": b, "Q": 1, "L": kv, **dims}))
        for t in model.tokens("prefill", quick=quick):
            chunk = min(t, MAX_CHUNK)
            out.append(Case(model.name, "prefill", {"B": max(1, t // chunk), "Q": chunk, "L": 2 * chunk, **dims}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "Q": 5, "L": 23, "Hq": 6, "Hkv": 2, "D": 32, "ragged": 1}),
                Case("test", "test", {"B": 2, "Q": 1, "L": 9, "Hq": 4, "Hkv": 4, "D": 16, "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # mixed: q_len 37/36/35 on ~300-token contexts; D=128, GQA group 4, page 16
        return [Case("check", "test", {"B": 3, "Q": 37, "L": 301, "Hq": 8, "Hkv": 2, "D": 128, "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        q_lens, kv_lens = lengths(p)
        kv = build_paged_kv(kv_lens, PAGE_SIZE, p["Hkv"], p["D"], dt, g, device)
        q = torch.randn(sum(q_lens), p["Hq"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        cu = torch.zeros(len(q_lens) + 1, dtype=torch.int32, device=device)
        cu[1:] = torch.cumsum(torch.tensor(q_lens, dtype=torch.int32, device=device), 0)
        return {"q": q, "k_cache": kv.k_cache, "v_cache": kv.v_cache, "block_table": kv.block_table,
                "seq_lens": kv.seq_lens, "cu_seqlens_q": cu, "max_seqlen_q": max(q_lens),
                "max_seqlen_k": max(kv_lens), "sm_scale": 1.0 / math.sqrt(p["D"])}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        kv = PagedKV(inputs["k_cache"], inputs["v_cache"], inputs["block_table"], inputs["seq_lens"])
        q, cu = inputs["q"], inputs["cu_seqlens_q"].tolist()
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        with exact_fp32():
            for b in range(len(cu) - 1):
                k, v = gather_kv(kv, b)
                out[cu[b]:cu[b + 1]] = attention_reference(q[cu[b]:cu[b + 1]], k, v, inputs["sm_scale"], causal=True)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        return causal_chunk_flops(*lengths(p), p["Hq"], p["D"])

    def bytes(self, case: Case, dtype: str) -> float:
        # every sequence's K/V once (a chunk's own from wherever the kernel reads it), q and out
        p = case.params
        return chunk_attention_bytes(*lengths(p), p["Hq"], p["Hkv"], p["D"], torch_dtype(dtype, self.id).itemsize)


SPEC = UnifiedAttentionSpec()
