"""Paged decode attention: vLLM 0.33.0 `triton_decode_attention.decode_attention_fwd` (stage 1 grouped +
stage 2 reduce) and SGLang 0.5.23 `kernels.ops.attention.decode_attention.decode_attention_fwd`.

Layout translation (untimed, in prepare):
  vLLM   -- takes the spec's paged cache as is: k/v_buffer [num_blocks, 16, Hkv, D], req_to_token = block
            table, page_size 16.  num_kv_splits from vLLM's own `triton_mla._compute_num_kv_splits(max_seq_len,
            sm_count)` (its only production caller, TritonMLA, picks it that way); attn_logits [B, Hq, splits,
            D + 1] fp32 and lse [B, Hq] allocated here, as the backend's workspace does.
  SGLang -- its Triton backend runs with page_size 1 (the ServerArgs default): the KV pool is the same memory
            viewed [slots, Hkv, D], kv_indptr [B + 1] int32 and kv_indices int64 token slots built from the
            block table; per-sequence num_kv_splits from its own `get_num_kv_splits_triton` (metadata step of
            the backend, untimed) with max_kv_splits 8 (ServerArgs default); use_pdl from
            `is_arch_support_pdl()` as the backend sets it on CUDA.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import SglangImpl, VllmImpl, sm_count, token_slots

VLLM_MOD = "vllm.v1.attention.ops.triton_decode_attention"
VLLM_MLA_MOD = "vllm.v1.attention.backends.mla.triton_mla"
SGL_MOD = "sglang.kernels.ops.attention.decode_attention"
SGL_META_MOD = "sglang.kernels.ops.attention.metadata"
SGL_ARCH_MOD = "sglang.kernels.jit.utils.arch"
SGL_MAX_KV_SPLITS = 8  # ServerArgs.triton_attention_num_kv_splits default


def vllm_num_kv_splits(up: Any, max_seq_len: int, device: torch.device) -> tuple[int, str]:
    """vLLM's own split rule (TritonMLA, its only production caller of decode_attention_fwd), else 4."""
    try:
        mla = up.import_module(VLLM_MLA_MOD, stub_missing=True)
        return int(mla._compute_num_kv_splits(max_seq_len, sm_count(device))), \
            "triton_mla._compute_num_kv_splits(max_seq_len, sm_count)"
    except Exception as e:  # noqa: BLE001 - keep running with a fixed split count, and say why
        return 4, f"num_kv_splits 4: triton_mla not importable ({type(e).__name__}: {str(e)[:120]})"


def sglang_use_pdl(up: Any) -> tuple[bool, str]:
    """use_pdl as SGLang's Triton backend sets it on CUDA (is_arch_support_pdl())."""
    try:
        arch = up.import_module(SGL_ARCH_MOD, stub_missing=True)
        return bool(arch.is_arch_support_pdl()), "use_pdl = is_arch_support_pdl()"
    except Exception as e:  # noqa: BLE001
        return False, f"use_pdl False: is_arch_support_pdl not importable ({type(e).__name__})"


class VllmPagedDecode(VllmImpl):
    kernel = "paged_decode_attention"
    dtypes = ("bf16", "fp16")
    modules = (VLLM_MOD,)

    def _num_kv_splits(self, max_seq_len: int, device: torch.device) -> tuple[int, str]:
        return vllm_num_kv_splits(self._up, max_seq_len, device)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[VLLM_MOD]
        q, kc, vc = inputs["q"], inputs["k_cache"], inputs["v_cache"]
        table, lens = inputs["block_table"], inputs["seq_lens"]
        b, hq, _ = q.shape
        dv = vc.shape[-1]
        page = kc.shape[1]
        splits, split_src = self._num_kv_splits(int(lens.max()), q.device)
        logits = torch.empty(b, hq, splits, dv + 1, dtype=torch.float32, device=q.device)
        lse = torch.empty(b, hq, dtype=q.dtype, device=q.device)
        k_scale = torch.tensor(1.0, dtype=torch.float32, device=q.device)
        v_scale = torch.tensor(1.0, dtype=torch.float32, device=q.device)
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.decode_attention_fwd(q, kc, vc, out, lse, table, lens, logits, splits, scale, page_size=page,
                                     k_scale=k_scale, v_scale=v_scale)

        notes = [*self.base_notes(), f"split count: {split_src}",
                 "kv_group_num > 1 -> grouped stage 1; stage 2 _decode_softmax_reducev_fwd"]
        return Prepared(fn, {"config": {"num_kv_splits": splits, "page_size": page, "BLOCK_N": 64},
                             "config_source": "launcher fixed tiles; split count as TritonMLA computes it",
                             "notes": "; ".join(notes)})


class SglangPagedDecode(SglangImpl):
    kernel = "paged_decode_attention"
    dtypes = ("bf16", "fp16")
    modules = (SGL_MOD, SGL_META_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        import triton

        mods = self.load_modules()
        mod, meta = mods[SGL_MOD], mods[SGL_META_MOD]
        q, kc, vc = inputs["q"], inputs["k_cache"], inputs["v_cache"]
        table, lens = inputs["block_table"], inputs["seq_lens"]
        b, hq, _ = q.shape
        hkv, dv = vc.shape[-2], vc.shape[-1]
        page = kc.shape[1]
        k_pool = kc.view(-1, hkv, kc.shape[-1])  # page_size 1 pool: one slot per token, same memory
        v_pool = vc.view(-1, hkv, dv)
        kv_indices = token_slots(table, lens, page)
        kv_indptr = torch.zeros(b + 1, dtype=torch.int32, device=q.device)
        kv_indptr[1:] = torch.cumsum(lens, 0)
        num_kv_splits = torch.empty(b, dtype=torch.int32, device=q.device)
        meta.get_num_kv_splits_triton[(1,)](
            num_kv_splits, lens, b, 1, hq, hkv, SGL_MAX_KV_SPLITS, sm_count(q.device),
            MAX_NUM_SEQ=256 if b < 256 else triton.next_power_of_2(b))
        logits = torch.empty(b, hq, SGL_MAX_KV_SPLITS, dv, dtype=torch.float32, device=q.device)
        lse = torch.empty(b, hq, SGL_MAX_KV_SPLITS, dtype=torch.float32, device=q.device)
        uneven = torch.zeros(1, dtype=torch.int32, device=q.device)
        use_pdl, pdl_src = sglang_use_pdl(self._up)
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.decode_attention_fwd(q, k_pool, v_pool, out, kv_indptr, kv_indices, logits, lse, num_kv_splits,
                                     SGL_MAX_KV_SPLITS, scale, 1.0, 1.0, use_pdl=use_pdl, page_size=1,
                                     uneven_batch=uneven)

        notes = [*self.base_notes(), "page_size 1 token-slot indices over the same paged memory", pdl_src,
                 "num_kv_splits per sequence from get_num_kv_splits_triton (untimed)"]
        return Prepared(fn, {"config": {"max_kv_splits": SGL_MAX_KV_SPLITS, "page_size": 1,
                                        "num_kv_splits": num_kv_splits.tolist()[:8]},
                             "config_source": "launcher fixed tiles; split counts as SGLang's triton backend",
                             "notes": "; ".join(notes)})


IMPLS = [VllmPagedDecode(), SglangPagedDecode()]
