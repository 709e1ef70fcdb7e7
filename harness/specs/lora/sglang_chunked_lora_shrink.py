"""SGLang chunked-SGMV LoRA shrink (catalog row 92, `chunked_sgmv_lora_shrink_forward`, the `csgmv` LoRA backend,
SGLang's default): x @ A[adapter].T for the stacked slices of a proj / gate_up / qkv layer, into an unscaled bf16
[T, S*r] buffer.  Contract and layout: _sglang.py."""

from __future__ import annotations

from harness.specs.lora._sglang import SglangShrinkSpec


class SglangChunkedLoraShrinkSpec(SglangShrinkSpec):
    id = "sglang_chunked_lora_shrink"
    catalog_rows = (92,)
    token_dim = 'T'
    title = "SGLang chunked SGMV LoRA shrink: x @ A[adapter].T per stacked slice, bf16, unscaled"
    layers = ("proj", "qkv", "gate_up")


SPEC = SglangChunkedLoraShrinkSpec()
