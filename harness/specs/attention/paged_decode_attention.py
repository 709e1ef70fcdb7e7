"""Paged-KV decode attention with GQA (catalog rows 10/11 vLLM `triton_decode_attention` stage 1 + stage 2,
79 SGLang `decode_attention`).

Math, per sequence b (one query token) and query head h with KV head h // (Hq / Hkv):

    out[b, h] = softmax(q[b, h] . K_b[:, kv(h)]^T * D^-0.5) @ V_b[:, kv(h)]

where K_b, V_b are the first seq_lens[b] tokens of sequence b, stored in pages.

Shapes: q [B, Hq, D]; k_cache, v_cache [num_blocks, 16, Hkv, D] (page size 16, vLLM's default block size);
block_table [B, max_blocks] int32 (random block order); seq_lens [B] int32; out [B, Hq, D].
seq_lens are ragged (L and shorter, down to 3L/4) so per-sequence length handling is exercised; the split-KV
scratch (attention logits / partial LSEs) is allocated by each impl in prepare, as the serving backends
allocate it once per batch.  B comes from the decode token counts, L from regimes.decode.kv_lens, capped at
MAX_DECODE_KV_TOKENS tokens of KV per call.
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
    decode_kv_lens,
    gather_kv,
    gqa_heads,
    torch_dtype,
)

PAGE_SIZE = 16


def decode_seq_lens(batch: int, kv_len: int) -> list[int]:
    """Deterministic ragged lengths in [3L/4, L], the first exactly L (so max_seq_len == L)."""
    spread = max(1, kv_len // 4)
    return [kv_len - (b * 7919) % spread if b else kv_len for b in range(batch)]


class PagedDecodeAttentionSpec(KernelSpec):
    id = "paged_decode_attention"
    category = "attention"
    catalog_rows = (10, 11, 79)
    token_dim = 'B'
    title = "Paged-KV decode attention (GQA, split-KV)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = gqa_heads(model)
        if heads is None:
            return []
        out = []
        for b in model.tokens("decode", quick=quick):
            for kv in decode_kv_lens(model, quick):
                if b * kv > MAX_DECODE_KV_TOKENS:
                    continue
                out.append(Case(model.name, "decode", {"B": b, "L": kv, "Hq": heads.q, "Hkv": heads.kv,
                                                        "D": heads.head_dim}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "L": 37, "Hq": 6, "Hkv": 2, "D": 32}),
                Case("test", "test", {"B": 2, "L": 5, "Hq": 4, "Hkv": 4, "D": 16})]

    def check_cases(self) -> list[Case]:
        # GQA group 4, D=128 (both upstreams' grouped path), L not a multiple of the page or the BLOCK_N tile
        return [Case("check", "test", {"B": 3, "L": 301, "Hq": 8, "Hkv": 2, "D": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        kv = build_paged_kv(decode_seq_lens(p["B"], p["L"]), PAGE_SIZE, p["Hkv"], p["D"], dt, g, device)
        q = torch.randn(p["B"], p["Hq"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        return {"q": q, "k_cache": kv.k_cache, "v_cache": kv.v_cache, "block_table": kv.block_table,
                "seq_lens": kv.seq_lens, "sm_scale": 1.0 / math.sqrt(p["D"])}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        kv = PagedKV(inputs["k_cache"], inputs["v_cache"], inputs["block_table"], inputs["seq_lens"])
        q = inputs["q"]
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        with exact_fp32():
            for b in range(q.shape[0]):
                k, v = gather_kv(kv, b)
                out[b] = attention_reference(q[b:b + 1], k, v, inputs["sm_scale"], causal=False)[0]
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        tokens = sum(decode_seq_lens(p["B"], p["L"]))
        return 4.0 * tokens * p["Hq"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        tokens = sum(decode_seq_lens(p["B"], p["L"]))
        return 2.0 * tokens * p["Hkv"] * p["D"] * elt + 2.0 * p["B"] * p["Hq"] * p["D"] * elt


SPEC = PagedDecodeAttentionSpec()
