"""Helion port of SGLang's segmented-GEMM LoRA B (catalog row(s) 95;
upstream SGLang 0.5.23 `sgemm_lora_b_fwd` (triton backend)).

    y[t, :] = base[t, :] + scaling[l_t] * xa[t, :] @ B[l_t].T      xa [T, r], B [L, N, r], base/y [T, N] bf16

Same kernel as sglang_chunked_lora_expand (one slice): base copy fused, rank in one hl.dot step.

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import SglangExpandPort, lora_expand_kernel  # noqa: F401 (the kit finds kernels here)


class HelionSglangSgemmLoraB(SglangExpandPort):
    kernel: ClassVar[str] = "sglang_sgemm_lora_b"


IMPL = HelionSglangSgemmLoraB()

if __name__ == "__main__":
    check_main(IMPL)
