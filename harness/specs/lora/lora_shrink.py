"""Multi-LoRA shrink (catalog row 90, vLLM `_lora_shrink_kernel` via `_lora_shrink`).  SGLang's shrinks (rows 92, 95)
are not providers here: they write an unscaled bf16 [T, S*r] buffer (the scaling moves to their expand), so they
have their own contract (sglang_chunked_lora_shrink, sglang_sgemm_lora_a; see _sglang.py), on the same shapes.

Math, per slice s and token t with adapter l = mapping[t]:

    out[s, t, :] = scale * A[s, l] @ x[t]        (0 for tokens of the base model, l = -1)

Shapes: x [T, H] bf16; A [S, L, r, H] bf16 (S slices, L resident adapters, rank r); mapping [T] int32 in
-1..L-1; out [S, T, r] fp32 (vLLM's shrink buffer dtype).  scale = 0.5.  See _common.py for the cases.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.lora._common import SCALE, lora_cases, shrink_math, token_lora_mapping


class LoraShrinkSpec(KernelSpec):
    id = "lora_shrink"
    category = "lora"
    catalog_rows = (90, 73)  # 73: kernel_utils do_shrink_kernel/mm_k, the body of this kernel
    token_dim = 'T'
    title = "Multi-LoRA shrink: per-token x @ A[adapter].T, scaled, into an fp32 buffer"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return lora_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 11, "H": 96, "N": 96, "r": 8, "L": 3, "S": 2}),
                Case("test", "test", {"T": 1, "H": 40, "N": 40, "r": 16, "L": 1, "S": 1})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "H": 1024, "N": 1024, "r": 16, "L": 4, "S": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(p["T"], p["H"], generator=g, device=device)
        a = torch.randn(p["S"], p["L"], p["r"], p["H"], generator=g, device=device) / math.sqrt(p["H"])
        return {"x": x.to(torch.bfloat16), "lora_a": a.to(torch.bfloat16),
                "mapping": token_lora_mapping(p["T"], p["L"], device, g), "scale": SCALE}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        return torch.empty(p["S"], p["T"], p["r"], dtype=torch.float32, device=inputs["x"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        with exact_fp32():
            return shrink_math(inputs["x"], inputs["lora_a"], inputs["mapping"], inputs["scale"])

    def tolerance(self, dtype: str) -> Tolerance:
        # bf16 operands, fp32 accumulation (split-K partial sums add in fp32) and an fp32 output: ~1e-5; a wrong
        # adapter, a missing scale or an unzeroed base-model row is O(1).  1e-3 leaves room for tf32-free
        # reordering only.
        return Tolerance(1e-3, "bf16 operands, fp32 accumulate and output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["S"] * p["T"] * p["r"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * 2 + p["S"] * p["L"] * p["r"] * p["H"] * 2 + p["S"] * p["T"] * p["r"] * 4 + p["T"] * 4


SPEC = LoraShrinkSpec()
