"""MLA decode attention in the absorbed (MQA) form over a paged latent cache (the Triton MLA decode paths:
vLLM `triton_decode_attention.decode_attention_fwd(is_mla=True)` as TritonMLA calls it, catalog rows 10/11 on
their MLA path, SGLang `decode_attention_fwd(has_mla=True)`, row 79, and FlashMLA's Triton reference
`benchmark/bench_flash_mla.py::mla_decode_triton`, rows 2 (`_mla_attn` split-KV stage) and 3 (its second stage
`_mla_softmax_reducev`, launched by the same call)).

Math, per sequence b and query head h, with the latent cache C_b [L_b, R + P] (R = kv_lora_rank latent, P =
rope dims) shared by all heads:

    out[b, h] = softmax(q[b, h] . C_b^T * scale) @ C_b[:, :R]

Shapes: q [B, Hq, R + P]; kv_cache [num_blocks, 16, R + P]; block_table [B, max_blocks] int32; seq_lens [B]
int32 (ragged, as paged_decode_attention); out [B, Hq, R].  scale = (qk_nope_head_dim + qk_rope_head_dim)^-0.5
(the model's softmax scale before absorption).  Hq = attention.num_q_heads / TP.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import (
    MAX_DECODE_KV_TOKENS,
    attention_tolerance,
    build_paged_kv,
    decode_kv_lens,
    torch_dtype,
)
from harness.specs.attention.paged_decode_attention import PAGE_SIZE, decode_seq_lens


def mla_dims(model: ModelShapes) -> dict[str, int] | None:
    keys = ("attention.num_q_heads", "mla.kv_lora_rank", "mla.qk_rope_head_dim", "mla.qk_nope_head_dim")
    if model.get("attention.kind", None) != "mla" or not all(model.has(k) for k in keys):
        return None
    return {"Hq": max(1, int(model.get("attention.num_q_heads")) // model.tp), "R": int(model.get("mla.kv_lora_rank")),
            "P": int(model.get("mla.qk_rope_head_dim")),
            "Dqk": int(model.get("mla.qk_nope_head_dim")) + int(model.get("mla.qk_rope_head_dim"))}


class MlaDecodeAttentionSpec(KernelSpec):
    id = "mla_decode_attention"
    category = "attention"
    catalog_rows = (2, 3, 10, 11, 79)
    token_dim = 'B'
    title = "MLA decode attention, absorbed MQA form over a paged latent cache"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = mla_dims(model)
        if dims is None:
            return []
        return [Case(model.name, "decode", {"B": b, "L": kv, **dims})
                for b in model.tokens("decode", quick=quick) for kv in decode_kv_lens(model, quick)
                if b * kv <= MAX_DECODE_KV_TOKENS]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "L": 37, "Hq": 5, "R": 24, "P": 8, "Dqk": 20}),
                Case("test", "test", {"B": 1, "L": 4, "Hq": 2, "R": 8, "P": 4, "Dqk": 8})]

    def check_cases(self) -> list[Case]:
        # DeepSeek-V3 geometry at TP 8 (16 heads, 512 + 64), ~300-token ragged contexts
        return [Case("check", "test", {"B": 3, "L": 301, "Hq": 16, "R": 512, "P": 64, "Dqk": 192})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        kv = build_paged_kv(decode_seq_lens(p["B"], p["L"]), PAGE_SIZE, 1, p["R"] + p["P"], dt, g, device)
        q = torch.randn(p["B"], p["Hq"], p["R"] + p["P"], generator=g, device=device).to(dt)
        return {"q": q, "kv_cache": kv.k_cache[:, :, 0].contiguous(), "block_table": kv.block_table,
                "seq_lens": kv.seq_lens, "sm_scale": 1.0 / math.sqrt(p["Dqk"]), "kv_lora_rank": p["R"]}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q = inputs["q"]
        return torch.empty(q.shape[0], q.shape[1], inputs["kv_lora_rank"], dtype=q.dtype, device=q.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q, cache, table = inputs["q"], inputs["kv_cache"], inputs["block_table"]
        r = inputs["kv_lora_rank"]
        page = cache.shape[1]
        out = torch.empty(q.shape[0], q.shape[1], r, dtype=torch.float32, device=q.device)
        with exact_fp32():
            for b, n in enumerate(inputs["seq_lens"].tolist()):
                c = cache[table[b, :math.ceil(n / page)].long()].flatten(0, 1)[:n].float()  # [n, R + P]
                s = (q[b].float() @ c.t()) * inputs["sm_scale"]
                out[b] = torch.softmax(s, dim=-1) @ c[:, :r]
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        tokens = sum(decode_seq_lens(p["B"], p["L"]))
        return 2.0 * tokens * p["Hq"] * (p["R"] + p["P"] + p["R"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        tokens = sum(decode_seq_lens(p["B"], p["L"]))
        return tokens * (p["R"] + p["P"]) * elt + p["B"] * p["Hq"] * (2 * p["R"] + p["P"]) * elt


SPEC = MlaDecodeAttentionSpec()
