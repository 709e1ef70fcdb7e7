"""Chunked prefill + paged decode over vLLM's legacy paged KV layout (catalog row 14: vLLM
`chunked_prefill_paged_decode`, the attention of its ROCm attention backend: prefix_prefill's `_fwd_kernel` for
the sequences with new prompt tokens, `kernel_paged_attention_2d` for the one-token decodes of the same batch).

Math, as unified_attention: per sequence b with KV length L_b (its context plus its q_len_b new tokens) and new
query token i < q_len_b, query head h with KV head h // (Hq / Hkv):

    out[i, h] = softmax_{j <= L_b - q_len_b + i}(q[i, h] . K_b[j, kv(h)] * D^-0.5) @ V_b[:, kv(h)]

A batch mixes Bd decode sequences (q_len 1, first) and Bp prefill chunks (q_len Q on a context of C tokens).
Shapes (the launcher's own layout, x = 16 bytes / element size):
    q [N, Hq, D] packed (N = sum q_len_b); key, value [N, Hkv, D]: the new tokens' K/V (the same values the cache
    holds at positions L_b - q_len_b .. L_b - 1: vLLM writes the cache before attention; the prefill kernel reads
    the chunk's own K/V from these packed tensors, the decode kernel from the cache);
    key_cache [num_blocks, Hkv, D / x, 16, x], value_cache [num_blocks, Hkv, D, 16] (page size 16), random
    block order; block_table [B, max_blocks + 2] int32 (vLLM's tables are wider than the longest sequence);
    cu_seqlens_q [B + 1] int32; seq_lens [B] int32 (= L_b); out [N, Hq, D].
Regimes: decode (Bd from decode tokens x L from kv_lens, capped like paged_decode_attention, no prefill) and
mixed prefill (Bp = T / chunk chunks of chunk = min(T, 8192) new tokens on as many context tokens, plus
MIXED_DECODES running decodes at the model's quick decode context, as vLLM's scheduler puts the running decodes
and a prefill chunk in one step).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import (
    MAX_DECODE_KV_TOKENS,
    attention_reference,
    attention_tolerance,
    causal_chunk_flops,
    chunk_attention_bytes,
    decode_kv_lens,
    gqa_heads,
    torch_dtype,
)
from harness.specs.attention.paged_decode_attention import PAGE_SIZE, decode_seq_lens

MAX_CHUNK = 8192
MIXED_DECODES = 16
TABLE_SLACK = 2  # spare block-table columns past the longest sequence


def lengths(p: dict) -> tuple[list[int], list[int]]:
    """(q_lens, kv_lens): Bd decodes (ragged contexts as paged_decode_attention), then Bp prefill chunks of Q new
    tokens on C context tokens (with `ragged`, chunk b is b % 3 tokens shorter and its context b * 7 % (C/4)
    tokens shorter)."""
    q_lens, kv_lens = [], []
    if p["Bd"]:
        kv_lens += decode_seq_lens(p["Bd"], p["L"])
        q_lens += [1] * p["Bd"]
    for b in range(p["Bp"]):
        q = max(1, p["Q"] - (b % 3 if p["ragged"] else 0))
        c = max(0, p["C"] - ((b * 7) % max(1, p["C"] // 4) if p["ragged"] else 0))
        q_lens.append(q)
        kv_lens.append(c + q)
    return q_lens, kv_lens


def kv_pack(dtype: torch.dtype) -> int:
    """x of the legacy key-cache layout: elements per 16 bytes."""
    return 16 // torch.empty((), dtype=dtype).element_size()


def gather_legacy(key_cache: torch.Tensor, value_cache: torch.Tensor, table: torch.Tensor, n: int, start: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens start .. n - 1 of one sequence (its block-table row `table`) as K, V [n - start, Hkv, D]."""
    _, hkv, dx, page, x = key_cache.shape
    first = start // page
    blocks = table[first:math.ceil(n / page)].long()
    k = key_cache[blocks].permute(0, 3, 1, 2, 4).reshape(-1, hkv, dx * x)
    v = value_cache[blocks].permute(0, 3, 1, 2).reshape(-1, hkv, value_cache.shape[2])
    lo, hi = start - first * page, n - first * page
    return k[lo:hi], v[lo:hi]


class ChunkedPrefillPagedDecodeSpec(KernelSpec):
    id = "chunked_prefill_paged_decode"
    category = "attention"
    catalog_rows = (14,)
    token_dim = None  # a mixed batch: Bd decode sequences + Bp prefill chunks, no one token dim
    title = "Mixed chunked-prefill + decode batch over vLLM's legacy paged KV layout (GQA, causal)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = gqa_heads(model)
        if heads is None:
            return []
        dims = {"Hq": heads.q, "Hkv": heads.kv, "D": heads.head_dim, "ragged": 0}
        out = []
        kv_lens = decode_kv_lens(model, quick)
        for b in model.tokens("decode", quick=quick):
            for kv in kv_lens:
                if b * kv <= MAX_DECODE_KV_TOKENS:
                    out.append(Case(model.name, "decode", {"Bd": b, "L": kv, "Bp": 0, "Q": 0, "C": 0, **dims}))
        mixed_l = decode_kv_lens(model, quick=True)
        for t in model.tokens("prefill", quick=quick):
            chunk = min(t, MAX_CHUNK)
            out.append(Case(model.name, "prefill", {"Bd": MIXED_DECODES if mixed_l else 0,
                                                    "L": mixed_l[0] if mixed_l else 0, "Bp": max(1, t // chunk),
                                                    "Q": chunk, "C": chunk, **dims}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"Bd": 2, "L": 37, "Bp": 3, "Q": 7, "C": 21, "Hq": 6, "Hkv": 2, "D": 32,
                                      "ragged": 1}),
                Case("test", "test", {"Bd": 3, "L": 9, "Bp": 0, "Q": 0, "C": 0, "Hq": 4, "Hkv": 4, "D": 16,
                                      "ragged": 0}),
                Case("test", "test", {"Bd": 1, "L": 19, "Bp": 1, "Q": 5, "C": 0, "Hq": 2, "Hkv": 1, "D": 24,
                                      "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # 3 decodes on ~300-token contexts + 2 chunks of 37/36 new tokens on 150/143 context tokens; D=128, GQA 4
        return [Case("check", "test", {"Bd": 3, "L": 301, "Bp": 2, "Q": 37, "C": 150, "Hq": 8, "Hkv": 2, "D": 128,
                                       "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        q_lens, kv_lens = lengths(p)
        hkv, d = p["Hkv"], p["D"]
        x = kv_pack(dt)
        if d % x:
            raise ValueError(f"{self.id}: head dim {d} is not a multiple of the key-cache pack x={x}")
        blocks_per = [math.ceil(n / PAGE_SIZE) for n in kv_lens]
        num_blocks = sum(blocks_per) + 1
        perm = torch.randperm(num_blocks, generator=g, device=device).to(torch.int32)
        table = torch.empty(len(kv_lens), max(blocks_per) + TABLE_SLACK, dtype=torch.int32, device=device)
        pos = 0
        for b, nb in enumerate(blocks_per):
            table[b, :nb] = perm[pos:pos + nb]
            table[b, nb:] = perm[-1]  # padding points at a real (spare) block, as vLLM's padded tables do
            pos += nb
        # unit-normal K/V drawn straight into the legacy layout (every element is an i.i.d. draw either way) and
        # in the run dtype: no fp32 copy of a multi-GB decode cache
        key_cache = torch.randn(num_blocks, hkv, d // x, PAGE_SIZE, x, generator=g, device=device, dtype=dt)
        value_cache = torch.randn(num_blocks, hkv, d, PAGE_SIZE, generator=g, device=device, dtype=dt)
        q = torch.randn(sum(q_lens), p["Hq"], d, generator=g, device=device, dtype=torch.float32).to(dt)
        keys, values = [], []
        for b, (ql, n) in enumerate(zip(q_lens, kv_lens)):
            k, v = gather_legacy(key_cache, value_cache, table[b], n, start=n - ql)
            keys.append(k)
            values.append(v)
        cu = torch.zeros(len(q_lens) + 1, dtype=torch.int32, device=device)
        cu[1:] = torch.cumsum(torch.tensor(q_lens, dtype=torch.int32, device=device), 0)
        return {"q": q, "key": torch.cat(keys).contiguous(), "value": torch.cat(values).contiguous(),
                "key_cache": key_cache, "value_cache": value_cache, "block_table": table,
                "seq_lens": torch.tensor(kv_lens, dtype=torch.int32, device=device), "cu_seqlens_q": cu,
                "max_seqlen_q": max(q_lens), "max_seqlen_k": max(kv_lens), "sm_scale": 1.0 / math.sqrt(d)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q, cu, lens = inputs["q"], inputs["cu_seqlens_q"].tolist(), inputs["seq_lens"].tolist()
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        with exact_fp32():
            for b, n in enumerate(lens):
                k, v = gather_legacy(inputs["key_cache"], inputs["value_cache"], inputs["block_table"][b], n)
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


SPEC = ChunkedPrefillPagedDecodeSpec()
