"""Helion port of SGLang's gate/up LoRA B (catalog row(s) 94;
upstream SGLang 0.5.23 `gate_up_lora_b_fwd` (triton backend)).

    y[t, slice s] = base[t, slice s] + scaling[l_t] * xa[t, s*r:(s+1)*r] @ B[l_t, slice s].T   (gate, up [N])

Same kernel as sglang_chunked_lora_expand: base copy fused, one launch per slice, rank in one hl.dot step.

Kernels, routing and the default-config heuristic live in ports/lora/_lora.py (shared by the LoRA ports).
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.lora._lora import SglangExpandPort, lora_expand_kernel  # noqa: F401 (the kit finds kernels here)


class HelionSglangGateUpLoraB(SglangExpandPort):
    kernel: ClassVar[str] = "sglang_gate_up_lora_b"


IMPL = HelionSglangGateUpLoraB()

if __name__ == "__main__":
    check_main(IMPL)
