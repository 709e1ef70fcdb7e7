"""Multi-LoRA expand (catalog row 72, vLLM `_lora_expand_kernel` via `_lora_expand`).  SGLang's expands (rows 91, 93,
94, 95) are not providers here: they read a bf16 [T, S*r] buffer and apply the per-adapter scaling themselves, so
they have their own contract (sglang_chunked_lora_expand, sglang_qkv_lora_b, sglang_gate_up_lora_b,
sglang_sgemm_lora_b; see _sglang.py).

Math, per token t with adapter l = mapping[t], slices s of width N:

    y[t, sN:(s+1)N] = base[t, sN:(s+1)N] + buf[s, t] @ B[s, l].T      (y = base for l = -1)

Shapes: buf [S, T, r] fp32 (the shrink output); B [S, L, N, r] bf16; mapping [T] int32 in -1..L-1; base
[T, S*N] bf16 (the base layer's output); y [T, S*N] bf16.

The kernels accumulate into y in place (vLLM add_inputs=True, as punica's add_expand calls it), so an impl's
call is: copy base into the output buffer, then the expand kernel.  The copy is part of every provider's timed
call (it is what production's in-place add reads and writes anyway).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.lora._common import SCALE, expand_math, lora_cases, token_lora_mapping


class LoraExpandSpec(KernelSpec):
    id = "lora_expand"
    category = "lora"
    catalog_rows = (72, 73)  # 73: kernel_utils do_expand_kernel/mm_k, the body of this kernel
    token_dim = 'T'
    title = "Multi-LoRA expand: y = base + buf @ B[adapter].T per slice"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return lora_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 11, "H": 96, "N": 48, "r": 8, "L": 3, "S": 2}),
                Case("test", "test", {"T": 1, "H": 40, "N": 40, "r": 16, "L": 1, "S": 1})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "H": 1024, "N": 1024, "r": 16, "L": 4, "S": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        # buf as a shrink of a unit-variance x would leave it: scale * N(0, 1) per rank entry
        buf = SCALE * torch.randn(p["S"], p["T"], p["r"], generator=g, device=device)
        b = torch.randn(p["S"], p["L"], p["N"], p["r"], generator=g, device=device) / math.sqrt(p["r"])
        base = torch.randn(p["T"], p["S"] * p["N"], generator=g, device=device)
        return {"buf": buf, "lora_b": b.to(torch.bfloat16), "base": base.to(torch.bfloat16),
                "mapping": token_lora_mapping(p["T"], p["L"], device, g)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["base"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        with exact_fp32():
            return expand_math(inputs["buf"], inputs["lora_b"], inputs["mapping"], inputs["base"])

    def tolerance(self, dtype: str) -> Tolerance:
        # vLLM casts buf to the weight dtype (bf16) before the dot and stores bf16: ~3e-3 rel. norm; a missing
        # base, a wrong adapter or slice offset is O(1e-1) or more.
        return Tolerance(1e-2, "bf16 operand cast of the fp32 buffer, bf16 add and output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["S"] * p["T"] * p["r"] * p["N"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        s, t, r, n, lo = p["S"], p["T"], p["r"], p["N"], p["L"]
        return s * t * r * 4 + s * lo * n * r * 2 + 2 * t * s * n * 2 + t * 4


SPEC = LoraExpandSpec()
