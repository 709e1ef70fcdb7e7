"""SGLang segmented-GEMM LoRA B (catalog row 95, `sgemm_lora_b_fwd`, the `triton` LoRA backend's expand of a
single-slice layer such as o_proj / down_proj): base + scaling[adapter] * xa @ B[adapter].T, added into the base
output.  Contract and layout: _sglang.py; same shapes as sglang_chunked_lora_expand's proj cases."""

from __future__ import annotations

from harness.specs.lora._sglang import SglangExpandSpec


class SglangSgemmLoraBSpec(SglangExpandSpec):
    id = "sglang_sgemm_lora_b"
    catalog_rows = (95,)
    token_dim = 'T'
    title = "SGLang segmented-GEMM LoRA B: y = base + scaling * xa @ B[adapter].T"
    layers = ("proj",)


SPEC = SglangSgemmLoraBSpec()
