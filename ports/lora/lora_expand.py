"""Helion port of vLLM multi-LoRA expand (catalog row(s) 72, 73;
upstream vLLM 0.33.0 `_lora_expand_kernel` via `_lora_expand`, add_inputs=True).

    y[t, sN:(s+1)N] = base[t, sN:(s+1)N] + bf16(buf[s, t]) @ B[s, l_t].T      buf [S, T, r] fp32, B [S, L, N, r],
    base/y [T, S*N] bf16 (y = base for l_t = -1)

Fuses the base copy into the expand: each [block_m tokens, N tile] program reads base and writes y once (the
upstream's call copies base into y, then adds in place), the rank (r <= 64) is one K step of an hl.dot.  One
launch per slice.  Memory-bound: 2 * T * S * N * 2 bytes of base/y plus buf and weights.

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import VllmExpandPort, lora_expand_kernel  # noqa: F401 (the kit finds kernels here)


class HelionLoraExpand(VllmExpandPort):
    kernel: ClassVar[str] = "lora_expand"


IMPL = HelionLoraExpand()

if __name__ == "__main__":
    check_main(IMPL)
