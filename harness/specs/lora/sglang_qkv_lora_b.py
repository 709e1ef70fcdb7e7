"""SGLang QKV LoRA B (catalog row 93, `qkv_lora_b_fwd`, the `triton` LoRA backend's expand of a qkv_proj): three
slices q [N], k [Nkv], v [Nkv] of one B [L, N + 2*Nkv, r], each from its r columns of xa, scaled and added into
the base output.  Contract and layout: _sglang.py; same shapes as sglang_chunked_lora_expand's qkv cases."""

from __future__ import annotations

from harness.specs.lora._sglang import SglangExpandSpec


class SglangQkvLoraBSpec(SglangExpandSpec):
    id = "sglang_qkv_lora_b"
    catalog_rows = (93,)
    token_dim = 'T'
    title = "SGLang QKV LoRA B: y = base + scaling * xa @ B[adapter].T over q/k/v slices"
    layers = ("qkv",)


SPEC = SglangQkvLoraBSpec()
