"""Mixed-batch paged attention: vLLM 0.33.0 `triton_unified_attention.unified_attention` (2D kernel, or the 3D
segmented kernel + reduce_segments for small decode batches), and SGLang 0.5.23 (catalog row 81:
`extend_attention.extend_attention_fwd` for batches with new prompt tokens; its Triton backend routes pure
decode batches to `decode_attention_fwd`, and so does the adapter, see paged_decode_attention's adapter).

SGLang extend, as its Triton backend's forward_extend calls it (page size 1): the prefix KV is read from the
pool (the spec's paged memory viewed [slots, Hkv, D]) through kv_indptr / kv_indices of each sequence's first
L - q_len tokens, the new tokens' K/V come as contiguous k_extend / v_extend (gathered from the cache in
prepare: SGLang has them from the projection), qo_indptr = cu_seqlens_q, causal, no custom mask, k/v scale
1.0, extend_seq_lens_cpu given.

vLLM:
The adapter replays what vLLM's Triton attention backend (`backends/triton_attn.py`) sets up per layer, in
prepare: seq_threshold_3D = MIN_LAUNCH_GRID_SIZE_2D // Hkv (no CUDA-graph capture sizes), num_par_softmax_
segments = NUM_PAR_SOFTMAX_SEGMENTS, and the fp32 segment scratch sized for min(threshold, 256 max_num_seqs)
query rows; window (-1, -1), no softcap, k/v descale 1.0 expanded to [B, Hkv] as the backend passes them for a
bf16 cache.  The spec's contiguous [num_blocks, 16, Hkv, D] caches are read through their strides, as the
backend's split views of its joint KV tensor are.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import SglangImpl, VllmImpl, token_slots
from upstream_adapters.attention.paged_decode_attention import SGL_META_MOD, SglangPagedDecode
from upstream_adapters.attention.paged_decode_attention import SGL_MOD as SGL_DECODE_MOD

VLLM_MOD = "vllm.v1.attention.ops.triton_unified_attention"
SGL_EXTEND_MOD = "sglang.kernels.ops.attention.extend_attention"
MAX_NUM_SEQS = 256  # vLLM scheduler default on a GPU server (bounds the 3D scratch rows)
# vLLM's backend constants (triton_attn.py); that module imports the whole config stack, so they are restated
# here and checked against the source text by tests/adapters/test_attention_adapters.py
MIN_LAUNCH_GRID_SIZE_2D = 128
NUM_PAR_SOFTMAX_SEGMENTS = 16


class VllmUnifiedAttention(VllmImpl):
    kernel = "unified_attention"
    dtypes = ("bf16", "fp16")
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[VLLM_MOD]
        q, kc, vc = inputs["q"], inputs["k_cache"], inputs["v_cache"]
        b, hkv = inputs["seq_lens"].shape[0], kc.shape[2]
        hq, d = q.shape[1], q.shape[2]
        threshold = MIN_LAUNCH_GRID_SIZE_2D // hkv
        rows = min(threshold, MAX_NUM_SEQS)
        d_pad = 1 << (d - 1).bit_length()
        segm_out = torch.empty(rows, hq, NUM_PAR_SOFTMAX_SEGMENTS, d_pad, dtype=torch.float32, device=q.device)
        segm_max = torch.empty(rows, hq, NUM_PAR_SOFTMAX_SEGMENTS, dtype=torch.float32, device=q.device)
        segm_sum = torch.empty(rows, hq, NUM_PAR_SOFTMAX_SEGMENTS, dtype=torch.float32, device=q.device)
        one = torch.tensor(1.0, dtype=torch.float32, device=q.device)
        k_descale = one.expand(b, hkv)
        v_descale = one.expand(b, hkv)
        max_q, max_k = int(inputs["max_seqlen_q"]), int(inputs["max_seqlen_k"])

        def fn() -> None:
            mod.unified_attention(
                q=q, k=kc, v=vc, out=out, cu_seqlens_q=inputs["cu_seqlens_q"], max_seqlen_q=max_q,
                seqused_k=inputs["seq_lens"], max_seqlen_k=max_k, softmax_scale=float(inputs["sm_scale"]),
                causal=True, window_size=(-1, -1), block_table=inputs["block_table"], softcap=0.0,
                q_descale=None, k_descale=k_descale, v_descale=v_descale, seq_threshold_3D=threshold,
                num_par_softmax_segments=NUM_PAR_SOFTMAX_SEGMENTS, softmax_segm_output=segm_out,
                softmax_segm_max=segm_max, softmax_segm_expsum=segm_sum)

        # the launcher's own 2D/3D rule, restated only for the record (the launcher decides)
        block_q = max(1, (16 if hq // hkv <= 16 else 1 << (hq // hkv - 1).bit_length()) // (hq // hkv))
        three_d = (max_q == 1 or max_q <= 8) and b * -(-max_q // block_q) <= threshold and q.shape[0] <= rows
        notes = [*self.base_notes(), f"expected path: {'3D segmented + reduce_segments' if three_d else '2D'}"]
        return Prepared(fn, {"config": {"seq_threshold_3D": threshold, "num_par_softmax_segments":
                                        NUM_PAR_SOFTMAX_SEGMENTS, "scratch_rows": rows},
                             "config_source": "vllm triton_attn backend metadata defaults (no cudagraph)",
                             "notes": "; ".join(notes)})


class SglangUnifiedAttention(SglangImpl):
    kernel = "unified_attention"
    dtypes = ("bf16", "fp16")
    modules = (SGL_EXTEND_MOD, SGL_DECODE_MOD, SGL_META_MOD)

    def __init__(self) -> None:
        super().__init__()
        self._decode = SglangPagedDecode()

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        if int(inputs["max_seqlen_q"]) == 1:
            # a pure decode batch: SGLang's backend runs forward_decode -> decode_attention_fwd
            self._decode._mods, self._decode._up = mods, self._up
            prep = self._decode.prepare(inputs, out, case, dtype)
            prep.info["notes"] = "decode batch routed to decode_attention_fwd as SGLang's backend does; " \
                + prep.info.get("notes", "")
            return prep
        mod = mods[SGL_EXTEND_MOD]
        q, kc, vc = inputs["q"], inputs["k_cache"], inputs["v_cache"]
        table, lens, cu_q = inputs["block_table"], inputs["seq_lens"], inputs["cu_seqlens_q"]
        hkv, d = kc.shape[2], kc.shape[3]
        page = kc.shape[1]
        k_pool, v_pool = kc.view(-1, hkv, d), vc.view(-1, hkv, d)
        q_lens = (cu_q[1:] - cu_q[:-1]).long()
        prefix = lens.long() - q_lens
        all_slots = token_slots(table, lens, page)
        starts = torch.zeros(len(lens) + 1, dtype=torch.long, device=q.device)
        starts[1:] = torch.cumsum(lens.long(), 0)
        pre_idx = torch.cat([all_slots[int(s0):int(s0) + int(n)] for s0, n in zip(starts[:-1], prefix)])
        new_idx = torch.cat([all_slots[int(s0) + int(n):int(s1)] for s0, n, s1 in zip(starts[:-1], prefix,
                                                                                      starts[1:])])
        k_ext, v_ext = k_pool[new_idx].contiguous(), v_pool[new_idx].contiguous()
        kv_indptr = torch.zeros(len(lens) + 1, dtype=torch.int32, device=q.device)
        kv_indptr[1:] = torch.cumsum(prefix, 0).to(torch.int32)
        qo_indptr = cu_q.to(torch.int32)
        max_ext = int(inputs["max_seqlen_q"])
        ext_cpu = q_lens.tolist()
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.extend_attention_fwd(q, k_ext, v_ext, out, k_pool, v_pool, qo_indptr, kv_indptr, pre_idx, None, True,
                                     None, max_ext, 1.0, 1.0, sm_scale=scale, page_size=1,
                                     extend_seq_lens_cpu=ext_cpu)

        notes = [*self.base_notes(), "extend_attention_fwd, page size 1: prefix from the pool via kv_indices, new "
                 "tokens' K/V contiguous (gathered from the cache in prepare)"]
        return Prepared(fn, {"config": {"page_size": 1, "max_len_extend": max_ext},
                             "config_source": "launcher (its own tile choice by capability and head dim)",
                             "notes": "; ".join(notes)})


IMPLS = [VllmUnifiedAttention(), SglangUnifiedAttention()]
