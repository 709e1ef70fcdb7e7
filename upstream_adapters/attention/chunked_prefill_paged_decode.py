"""Chunked prefill + paged decode: vLLM 0.33.0 `v1/attention/ops/chunked_prefill_paged_decode.py`
`chunked_prefill_paged_decode` (catalog row 14), called as vLLM's ROCm attention backend calls it
(`backends/rocm_attn.py` RocmAttentionImpl.forward): the spec's legacy-layout key/value caches as they are, the
new tokens' packed key/value, query_start_loc = cu_seqlens_q, seq_lens, max_seq_len / max_query_len, k/v scale
1.0 fp32 tensors, kv_cache_dtype "auto", no ALiBi / sinks / fp8 output, sliding_window = 1 + (-1) = 0 (off),
non-interleaved V cache, causal.

The launcher runs prefix_prefill.context_attention_fwd(skip_decode=True) when max_query_len > 1, then
kernel_paged_attention_2d over every sequence (grid [B, Hkv]; it returns early for the prefill sequences).  On
NVIDIA it asks `vllm.platforms.rocm.use_rocm_custom_paged_attention`, which is False off AMD (the arch string
holds no gfx name), so both halves are Triton.  That module is imported inside the launcher; prepare imports it
first through the loader (stand-ins for what it cannot load) so the in-call import finds it.  Its import reads
the GPU's arch name, so it is loaded only on a GPU.

The prefill half reads each chunk's own K/V from the packed key/value, the decode half and the spec's reference
read every token from the cache.  In serving the two agree because vLLM writes the cache from key/value before
attention; the adapter hands the launcher the new tokens' K/V gathered from the cache (the same values: the spec
draws key/value that way), refreshed by `Relayout` after the gate rewrites the inputs.  Passing the spec's packed
key/value as they are fails that re-check: a fresh draw scatters its pages by a new block permutation while the
block table (structure) is kept, so the rewritten key/value are no longer the tokens the cache holds there.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.attention.chunked_prefill_paged_decode import gather_legacy
from upstream_adapters._base import Relayout
from upstream_adapters.attention._common import VllmImpl

VLLM_MOD = "vllm.v1.attention.ops.chunked_prefill_paged_decode"
ROCM_PLATFORM_MOD = "vllm.platforms.rocm"


def new_token_kv(inputs: Inputs, which: int) -> torch.Tensor:
    """The new tokens' K (which=0) or V (1) [N, Hkv, D] packed like q, read from the cache (positions
    L_b - q_len_b .. L_b - 1 of each sequence through its block-table row), where vLLM wrote them."""
    cu, lens = inputs["cu_seqlens_q"].tolist(), inputs["seq_lens"].tolist()
    parts = [gather_legacy(inputs["key_cache"], inputs["value_cache"], inputs["block_table"][b], n,
                           start=n - (cu[b + 1] - cu[b]))[which] for b, n in enumerate(lens)]
    return torch.cat(parts)


class VllmChunkedPrefillPagedDecode(VllmImpl):
    kernel = "chunked_prefill_paged_decode"
    dtypes = ("bf16", "fp16")
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[VLLM_MOD]
        rocm = self._up.import_module(ROCM_PLATFORM_MOD, stub_missing=True)
        q, kc, vc = inputs["q"], inputs["key_cache"], inputs["value_cache"]
        max_q, max_k = int(inputs["max_seqlen_q"]), int(inputs["max_seqlen_k"])
        one = torch.tensor(1.0, dtype=torch.float32, device=q.device)
        scale = float(inputs["sm_scale"])
        hq, hkv = q.shape[1], kc.shape[1]
        custom = rocm.use_rocm_custom_paged_attention(q.dtype, q.shape[2], vc.shape[3], hq // hkv, max_k, 0, "auto")
        rl = Relayout()
        key = rl(lambda: new_token_kv(inputs, 0))
        value = rl(lambda: new_token_kv(inputs, 1))

        def fn() -> None:
            mod.chunked_prefill_paged_decode(
                query=q, key=key, value=value, output=out, kv_cache_dtype="auto",
                key_cache=kc, value_cache=vc, block_table=inputs["block_table"],
                query_start_loc=inputs["cu_seqlens_q"], seq_lens=inputs["seq_lens"], max_seq_len=max_k,
                max_query_len=max_q, k_scale=one, v_scale=one, alibi_slopes=None, sliding_window=0,
                sm_scale=scale, output_scale=None, sinks=None, use_interleaved_v_cache=False, causal=True)

        page = vc.shape[3]
        group = hq // hkv
        notes = self.notes(
            "vLLM serves this launcher only on ROCm (backends/rocm_attn.py); on NVIDIA it is the upstream Triton "
            "kernel outside its production platform",
            "RocmAttentionImpl.forward call (sliding_window 0, k/v scale 1.0, kv_cache_dtype auto)",
            f"use_rocm_custom_paged_attention -> {custom} (arch {getattr(rocm, '_GCN_ARCH', '?')!r})",
            "new tokens' key/value gathered from the cache (untimed; vLLM wrote the cache from them)",
            ("prefix_prefill _fwd_kernel (BLOCK_M 128, BLOCK_N 64, 32-token cache tiles, skip_decode) + "
             if max_q > 1 else "decode-only batch: ") + "kernel_paged_attention_2d")
        return Prepared(fn, {"config": {"prefill": {"BLOCK_M": 128, "BLOCK_N": 64, "cache_tile": 32}
                                        if max_q > 1 else None,
                                        "decode": {"BLOCK_SIZE": min(page, 128),
                                                   "num_queries_per_kv_padded": max(1 << (group - 1).bit_length(),
                                                                                    16)}},
                             "config_source": "launcher's fixed tiles (prefix_prefill and the 2D decode kernel)",
                             "notes": notes}, relayout=rl.refresh)


IMPLS = [VllmChunkedPrefillPagedDecode()]
