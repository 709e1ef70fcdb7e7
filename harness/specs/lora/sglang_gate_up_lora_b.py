"""SGLang gate/up LoRA B (catalog row 94, `gate_up_lora_b_fwd`, the `triton` LoRA backend's expand of a
gate_up_proj): two slices gate [N], up [N] of one B [L, 2N, r], each from its r columns of xa, scaled and added
into the base output.  Contract and layout: _sglang.py; same shapes as sglang_chunked_lora_expand's gate_up cases
(models without a dense MLP have none)."""

from __future__ import annotations

from harness.specs.lora._sglang import SglangExpandSpec


class SglangGateUpLoraBSpec(SglangExpandSpec):
    id = "sglang_gate_up_lora_b"
    catalog_rows = (94,)
    token_dim = 'T'
    title = "SGLang gate/up LoRA B: y = base + scaling * xa @ B[adapter].T over gate/up slices"
    layers = ("gate_up",)


SPEC = SglangGateUpLoraBSpec()
