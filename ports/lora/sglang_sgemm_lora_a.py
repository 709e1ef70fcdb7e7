"""Helion port of SGLang's segmented-GEMM LoRA A (catalog row(s) 95;
upstream SGLang 0.5.23 `sgemm_lora_a_fwd` (triton backend)).

    out[t, :] = A[l_t] @ x[t]      x [T, H] bf16, A [L, S*r, H] bf16 -> out [T, S*r] bf16 (0 for l_t = -1)

Same contract and kernel as sglang_chunked_lora_shrink: tokens grouped by adapter in prepare, all stacked slices
in one tile (x read once), hl.dot with fp32 accumulate.  Memory-bound.

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import SglangShrinkPort, lora_shrink_kernel, lora_shrink_reduce, lora_shrink_split_kernel  # noqa: F401 (the kit finds kernels here)


class HelionSglangSgemmLoraA(SglangShrinkPort):
    kernel: ClassVar[str] = "sglang_sgemm_lora_a"


IMPL = HelionSglangSgemmLoraA()

if __name__ == "__main__":
    check_main(IMPL)
