"""Helion port of SGLang's chunked-SGMV LoRA shrink (catalog row(s) 92;
upstream SGLang 0.5.23 `chunked_sgmv_lora_shrink_forward` (csgmv backend)).

    out[t, :] = A[l_t] @ x[t]      x [T, H] bf16, A [L, S*r, H] bf16 -> out [T, S*r] bf16 (0 for l_t = -1)

Tokens grouped by adapter in prepare; one launch covers all stacked slices (the S*r rank rows are one tile, so x
is read once); hl.dot with fp32 accumulate; base-model rows written 0 without reading x.  Memory-bound.

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import SglangShrinkPort, lora_shrink_kernel, lora_shrink_reduce, lora_shrink_split_kernel  # noqa: F401 (the kit finds kernels here)


class HelionSglangChunkedLoraShrink(SglangShrinkPort):
    kernel: ClassVar[str] = "sglang_chunked_lora_shrink"


IMPL = HelionSglangChunkedLoraShrink()

if __name__ == "__main__":
    check_main(IMPL)
