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
FlashMLA -- deepseek-ai/FlashMLA @9241ae3 `benchmark/bench_flash_mla.py::mla_decode_triton` (catalog rows 2 and 3:
          it launches `_mla_attn` then `_mla_softmax_reducev`), called as the script's run_flash_mla_triton does:
          q_nope / q_pe and the latent cache's kv_c [..., :R] / k_pe [..., R:] parts (here strided views of the
          spec's tensors, the kernels take row strides), req_to_tokens = the block table, page size 16 (the
          script uses 64 with its own cache), num_kv_splits = 32 (the script's fixed value), attn_logits
          [B, Hq, 32, R + 1] fp32 (the script allocates it with torch's default dtype, which it sets to the run
          dtype; fp32 is what the kernel's fp32 partial results and LSE are stored as in vLLM, where the kernel
          comes from).  The script imports flashinfer and flash_mla at its top for its other benchmarks: the
          compiled `flash_mla.cuda` gets a stand-in before import (so flash_mla's python package imports) and
          flashinfer a stub_missing stand-in; neither is used by the Triton path.  The module also builds its
          shape table with CUDA tensors at import, so it imports only on a GPU machine.  `_mla_attn_kernel`
          loads BLOCK_H = 16 query heads and R / P dims without masks: Hq must be a multiple of 16 and R, P
          powers of two, otherwise prepare refuses the case.
"""

from __future__ import annotations

import torch
import triton

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import SglangImpl, UpstreamImpl, VllmImpl, sm_count, token_slots
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
FLASHMLA_MOD = "benchmark.bench_flash_mla"
FLASHMLA_EXT = "flash_mla.cuda"  # the compiled extension flash_mla/flash_mla_interface.py imports
FLASHMLA_KV_SPLITS = 32  # run_flash_mla_triton's num_kv_splits
FLASHMLA_BLOCK_H = 16  # _mla_attn's BLOCK_H (query heads per program, unmasked)


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


class FlashMlaTritonDecode(UpstreamImpl):
    kernel = "mla_decode_attention"
    provider = "flashmla"
    package = "flashmla"
    dtypes = ("bf16", "fp16")
    modules = (FLASHMLA_MOD,)

    def __init__(self) -> None:
        super().__init__()
        self._ext_stand_in = False

    def _before_import(self) -> None:
        super()._before_import()
        import sys

        from upstream_adapters._loader import StandInModule, _register

        # flash_mla is this upstream's own package, so stub_missing may not stand in for its extension; the
        # benchmark script only needs `from flash_mla import ...` to succeed (the names are unused here)
        if FLASHMLA_EXT not in sys.modules:
            _register(FLASHMLA_EXT, StandInModule(FLASHMLA_EXT, "needs a compiled extension (not loadable here)"))
            self._ext_stand_in = True

    def case_reason(self, case: Case, dtype: str) -> str | None:
        hq, r, pe = case.params["Hq"], case.params["R"], case.params["P"]
        if hq % FLASHMLA_BLOCK_H:
            return (f"FlashMLA _mla_attn_kernel loads {FLASHMLA_BLOCK_H} query heads per program without a mask: "
                    f"Hq must be a multiple of {FLASHMLA_BLOCK_H} (this case: {hq})")
        if r & (r - 1) or pe & (pe - 1):
            return f"FlashMLA _mla_attn_kernel needs power-of-two latent and rope dims (this case: {r}, {pe})"
        return None

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FLASHMLA_MOD]
        q, table, lens = inputs["q"], inputs["block_table"], inputs["seq_lens"]
        r = int(inputs["kv_lora_rank"])
        cache = inputs["kv_cache"]
        page, width = cache.shape[1], cache.shape[2]
        b, hq, _ = q.shape
        p = width - r
        if hq % FLASHMLA_BLOCK_H:
            raise ValueError(f"FlashMLA _mla_attn_kernel loads {FLASHMLA_BLOCK_H} query heads per program without "
                             f"a mask: Hq must be a multiple of {FLASHMLA_BLOCK_H} (got {hq})")
        if r & (r - 1) or p & (p - 1):
            raise ValueError(f"FlashMLA _mla_attn_kernel needs power-of-two latent and rope dims (got {r}, {p})")
        q_nope, q_pe = q[..., :r], q[..., r:]
        flat = cache.view(-1, width)
        kv_c, k_pe = flat[:, :r], flat[:, r:]
        logits = torch.empty(b, hq, FLASHMLA_KV_SPLITS, r + 1, dtype=torch.float32, device=q.device)
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.mla_decode_triton(q_nope, q_pe, kv_c, k_pe, out, table, lens, logits, FLASHMLA_KV_SPLITS, scale,
                                  page)

        extra = [f"stand-in for {FLASHMLA_EXT} (flash_mla's compiled extension, unused by the Triton path)"
                 if self._ext_stand_in else "",
                 "mla_decode_triton = _mla_attn (BLOCK_H 16, BLOCK_N 64) + _mla_softmax_reducev",
                 f"num_kv_splits {FLASHMLA_KV_SPLITS} as run_flash_mla_triton; attn_logits fp32",
                 "q_nope/q_pe and kv_c/k_pe are strided views of the spec's q and latent cache"]
        return Prepared(fn, {"config": {"num_kv_splits": FLASHMLA_KV_SPLITS, "BLOCK_H": FLASHMLA_BLOCK_H,
                                        "BLOCK_N": 64, "page_size": page},
                             "config_source": "benchmark script's fixed tiles and split count",
                             "notes": self.notes(*extra)})


IMPLS = [VllmMlaDecode(), SglangMlaDecode(), FlashMlaTritonDecode()]
