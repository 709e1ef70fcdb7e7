"""MLA decode (absorbed form): vLLM 0.33.0 `triton_decode_attention.decode_attention_fwd(is_mla=True)` and SGLang
0.5.23 `kernels.ops.attention.decode_attention.decode_attention_fwd(has_mla=True)`.

vLLM   -- replays TritonMLAImpl.forward_mqa: the latent cache [num_blocks, 16, R + P] gets a head dim
          (unsqueeze(2)), V is its [..., :R] view, lse [B, Hq] in q's dtype, attn_logits [B, Hq, splits, R + 1]
          fp32, num_kv_splits = triton_mla._compute_num_kv_splits(max_seq_len, sm_count), k/v scale 1.0.
SGLang -- page size 1 over the same memory: k_buffer [slots, 1, R + P], v_buffer its [..., :R] view,
          kv_indptr / int64 kv_indices from the block table; max_kv_splits as its Triton backend sets it for
          MLA (`_mla_decode_kv_splits_cap(8, sm_count, max_context_len)`, restated here from
          srt/layers/attention/triton_backend.py, checked against the source by the adapter tests; the
          context length is taken as 131072, the longest decode context of the shape files), per-sequence
          splits from get_num_kv_splits_triton (untimed), use_pdl as the backend sets it.
"""

from __future__ import annotations

import torch
import triton

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import SglangImpl, VllmImpl, sm_count, token_slots
from upstream_adapters.attention.paged_decode_attention import (
    SGL_META_MOD,
    SGL_MOD,
    VLLM_MOD,
    sglang_use_pdl,
    vllm_num_kv_splits,
)

SGL_BASE_KV_SPLITS = 8  # ServerArgs.triton_attention_num_kv_splits default
MLA_DECODE_MIN_BLOCK_KV = 32  # triton_backend._MLA_DECODE_MIN_BLOCK_KV
MAX_CONTEXT_LEN = 131072


def sglang_mla_max_kv_splits(sms: int, max_context_len: int = MAX_CONTEXT_LEN) -> int:
    """triton_backend._mla_decode_kv_splits_cap(base, sm_count, max_context_len)."""
    if sms <= 0:
        return SGL_BASE_KV_SPLITS
    sm_cap = triton.next_power_of_2(sms)
    ctx_cap = triton.next_power_of_2(triton.cdiv(max_context_len, MLA_DECODE_MIN_BLOCK_KV))
    return max(SGL_BASE_KV_SPLITS, min(sm_cap, ctx_cap))


class VllmMlaDecode(VllmImpl):
    kernel = "mla_decode_attention"
    dtypes = ("bf16", "fp16")
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[VLLM_MOD]
        q, table, lens = inputs["q"], inputs["block_table"], inputs["seq_lens"]
        r = int(inputs["kv_lora_rank"])
        kv = inputs["kv_cache"].unsqueeze(2)  # [num_blocks, page, 1, R + P]
        v = kv[..., :r]
        page = kv.shape[1]
        b, hq, _ = q.shape
        splits, split_src = vllm_num_kv_splits(self._up, int(lens.max()), q.device)
        logits = torch.empty(b, hq, splits, r + 1, dtype=torch.float32, device=q.device)
        lse = torch.empty(b, hq, dtype=q.dtype, device=q.device)
        one = torch.tensor(1.0, dtype=torch.float32, device=q.device)
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.decode_attention_fwd(q, kv, v, out, lse, table, lens, logits, splits, scale, page,
                                     k_scale=one, v_scale=one, is_mla=True)

        notes = [*self.base_notes(), f"split count: {split_src}", "TritonMLA forward_mqa call, is_mla=True"]
        return Prepared(fn, {"config": {"num_kv_splits": splits, "page_size": page},
                             "config_source": "launcher fixed tiles; split count as TritonMLA computes it",
                             "notes": "; ".join(notes)})


class SglangMlaDecode(SglangImpl):
    kernel = "mla_decode_attention"
    dtypes = ("bf16", "fp16")
    modules = (SGL_MOD, SGL_META_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        mod, meta = mods[SGL_MOD], mods[SGL_META_MOD]
        q, table, lens = inputs["q"], inputs["block_table"], inputs["seq_lens"]
        r = int(inputs["kv_lora_rank"])
        cache = inputs["kv_cache"]
        page, width = cache.shape[1], cache.shape[2]
        k_pool = cache.view(-1, 1, width)
        v_pool = k_pool[..., :r]
        b, hq, _ = q.shape
        kv_indices = token_slots(table, lens, page)
        kv_indptr = torch.zeros(b + 1, dtype=torch.int32, device=q.device)
        kv_indptr[1:] = torch.cumsum(lens, 0)
        sms = sm_count(q.device)
        max_splits = sglang_mla_max_kv_splits(sms)
        num_kv_splits = torch.empty(b, dtype=torch.int32, device=q.device)
        meta.get_num_kv_splits_triton[(1,)](
            num_kv_splits, lens, b, 1, hq, 1, max_splits, sms,
            MAX_NUM_SEQ=256 if b < 256 else triton.next_power_of_2(b))
        logits = torch.empty(b, hq, max_splits, r, dtype=torch.float32, device=q.device)
        lse = torch.empty(b, hq, max_splits, dtype=torch.float32, device=q.device)
        uneven = torch.zeros(1, dtype=torch.int32, device=q.device)
        use_pdl, pdl_src = sglang_use_pdl(self._up)
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.decode_attention_fwd(q, k_pool, v_pool, out, kv_indptr, kv_indices, logits, lse, num_kv_splits,
                                     max_splits, scale, 1.0, 1.0, has_mla=True, use_pdl=use_pdl, page_size=1,
                                     uneven_batch=uneven)

        notes = [*self.base_notes(), "page_size 1 token-slot indices over the same paged memory", pdl_src,
                 f"max_kv_splits {max_splits} = _mla_decode_kv_splits_cap(8, {sms} SMs, {MAX_CONTEXT_LEN})"]
        return Prepared(fn, {"config": {"max_kv_splits": max_splits, "page_size": 1},
                             "config_source": "launcher fixed tiles; split cap as SGLang's triton backend (MLA)",
                             "notes": "; ".join(notes)})


IMPLS = [VllmMlaDecode(), SglangMlaDecode()]
