"""SGLang segmented-GEMM LoRA A (catalog row 95, `sgemm_lora_a_fwd`, the `triton` LoRA backend's shrink for every
layer, stack_num 1 / 2 / 3): the same contract as sglang_chunked_lora_shrink (_sglang.py), a separate spec only
because both kernels are provider "sglang"; its cases are the same shapes, so the two backends line up."""

from __future__ import annotations

from harness.specs.lora._sglang import SglangShrinkSpec


class SglangSgemmLoraASpec(SglangShrinkSpec):
    id = "sglang_sgemm_lora_a"
    catalog_rows = (95,)
    token_dim = 'T'
    title = "SGLang segmented-GEMM LoRA A: x @ A[adapter].T per stacked slice, bf16, unscaled"
    layers = ("proj", "qkv", "gate_up")


SPEC = SglangSgemmLoraASpec()
