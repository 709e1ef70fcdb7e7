"""SGLang chunked-SGMV LoRA expand (catalog row 91, `chunked_sgmv_lora_expand_forward`, the `csgmv` LoRA backend,
SGLang's default): base + scaling[adapter] * xa @ B[adapter].T per slice, added into the base output, for proj,
gate_up (2 slices) and qkv (3 slices of two widths) layers.  Contract and layout: _sglang.py.  The kernel adds in
place, so an impl's call is: copy base into the output buffer, then the kernel (as lora_expand's)."""

from __future__ import annotations

from harness.specs.lora._sglang import SglangExpandSpec


class SglangChunkedLoraExpandSpec(SglangExpandSpec):
    id = "sglang_chunked_lora_expand"
    catalog_rows = (91,)
    token_dim = 'T'
    title = "SGLang chunked SGMV LoRA expand: y = base + scaling * xa @ B[adapter].T per slice"
    layers = ("proj", "qkv", "gate_up")


SPEC = SglangChunkedLoraExpandSpec()
