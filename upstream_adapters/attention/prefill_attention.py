"""Varlen causal prefill attention: vLLM 0.33.0 `triton_prefill_attention.context_attention_fwd` and SGLang 0.5.23
`kernels.ops.attention.prefill_attention.context_attention_fwd`.

Both take the spec's packed layout as is (q/k/v/o [N, heads, D], b_start_loc, b_seq_len int32); no
translation.  vLLM picks BLOCK 128 on sm80+ only when current_platform is CUDA, hence the platform pin;
SGLang picks BLOCK 128 from its module-level CUDA_CAPABILITY (> 8).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import SglangImpl, VllmImpl

VLLM_MOD = "vllm.v1.attention.ops.triton_prefill_attention"
SGL_MOD = "sglang.kernels.ops.attention.prefill_attention"


class VllmPrefillAttention(VllmImpl):
    kernel = "prefill_attention"
    dtypes = ("bf16", "fp16")
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[VLLM_MOD]
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        start, lens, max_len = inputs["b_start_loc"], inputs["b_seq_len"], int(inputs["max_input_len"])
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.context_attention_fwd(q, k, v, out, start, lens, max_len, is_causal=True, softmax_scale=scale)

        block = mod.get_block_size(q.dtype)
        return Prepared(fn, {"config": {"BLOCK_M": block, "num_warps": 4 if q.shape[-1] <= 64 else 8},
                             "config_source": "launcher fixed (get_block_size by dtype/capability)",
                             "notes": "; ".join(self.base_notes())})


class SglangPrefillAttention(SglangImpl):
    kernel = "prefill_attention"
    dtypes = ("bf16", "fp16")
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[SGL_MOD]
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        start, lens, max_len = inputs["b_start_loc"], inputs["b_seq_len"], int(inputs["max_input_len"])
        scale = float(inputs["sm_scale"])

        def fn() -> None:
            mod.context_attention_fwd(q, k, v, out, start, lens, max_len, is_causal=True, sm_scale=scale)

        cap = getattr(mod, "CUDA_CAPABILITY", None)
        return Prepared(fn, {"config": {"CUDA_CAPABILITY": str(cap), "num_warps": 4 if q.shape[-1] <= 64 else 8},
                             "config_source": "launcher fixed (BLOCK 128 when capability major > 8, else 64)",
                             "notes": "; ".join(self.base_notes())})


IMPLS = [VllmPrefillAttention(), SglangPrefillAttention()]
