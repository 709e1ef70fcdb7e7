"""Helion port of vLLM multi-LoRA shrink (catalog row(s) 90, 73;
upstream vLLM 0.33.0 `_lora_shrink_kernel` via `_lora_shrink`).

    out[s, t, :] = scale * A[s, l_t] @ x[t]      x [T, H] bf16, A [S, L, r, H] bf16 -> out [S, T, r] fp32
    (0 for l_t = -1)

Tokens are grouped by adapter (prepare), so each block of block_m tokens multiplies one dense [r, H] weight tile
on tensor cores (hl.dot, fp32 accumulate); all S slices are grid programs of one launch; base-model rows are
written 0 without reading x.  Memory-bound (x read once: T*H*2 bytes + the adapters' weights).

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import VllmShrinkPort, lora_shrink_kernel, lora_shrink_reduce, lora_shrink_split_kernel  # noqa: F401 (the kit finds kernels here)


class HelionLoraShrink(VllmShrinkPort):
    kernel: ClassVar[str] = "lora_shrink"


IMPL = HelionLoraShrink()

if __name__ == "__main__":
    check_main(IMPL)
