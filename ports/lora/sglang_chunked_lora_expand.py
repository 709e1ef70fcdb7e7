"""Helion port of SGLang's chunked-SGMV LoRA expand (catalog row(s) 91;
upstream SGLang 0.5.23 `chunked_sgmv_lora_expand_forward` (csgmv backend)).

    y[t, slice s] = base[t, slice s] + scaling[l_t] * xa[t, s*r:(s+1)*r] @ B[l_t, slice s].T     xa [T, S*r],
    B [L, sum N_s, r], base/y [T, sum N_s] bf16 (y = base for l_t = -1)

Fuses the base copy into the expand (base read, y written once per element), one launch per slice (qkv slices
have two widths), rank in one hl.dot K step, scaling in fp32 with one rounding.  Memory-bound.

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import SglangExpandPort, lora_expand_kernel  # noqa: F401 (the kit finds kernels here)


class HelionSglangChunkedLoraExpand(SglangExpandPort):
    kernel: ClassVar[str] = "sglang_chunked_lora_expand"


IMPL = HelionSglangChunkedLoraExpand()

if __name__ == "__main__":
    check_main(IMPL)
