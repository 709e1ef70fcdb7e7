"""SiLU-and-mul (catalog row 74, SGLang `act_and_mul_kernel` via `act_and_mul_triton`, activation "silu").

Math:   out[r, j] = silu(x[r, j]) * x[r, N + j],   silu(g) = g / (1 + exp(-g))

Shapes: x [R, 2N] bf16 (the gate-up GEMM output, gate columns first); out [R, N] bf16.  R = tokens * top_k and
N = moe.intermediate_size / tp for MoE models (the fused-MoE intermediate this kernel runs on in SGLang), R =
tokens and N = mlp.intermediate_size / tp for dense models.

Reference: fp32 math (pure torch), with no intermediate rounding; the kernels round silu(gate) to bf16 before
the multiply, which the tolerance covers.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.activation._common import gate_up_rows, random_gate_up


class SiluAndMulSpec(KernelSpec):
    id = "silu_and_mul"
    category = "activation"
    catalog_rows = (74,)
    token_dim = 'R'
    title = "SiLU(gate) * up over a [gate | up] row"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return [Case(model.name, regime, {"R": r, "N": n}) for regime, r, n in gate_up_rows(model, quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"R": 7, "N": 100}), Case("test", "test", {"R": 1, "N": 33})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"R": 37, "N": 1100})]  # > one 512-wide block per row, ragged tail

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        return {"x": random_gate_up(case.params["R"], case.params["N"], device, seed)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["x"]
        return torch.empty(x.shape[0], x.shape[1] // 2, dtype=torch.bfloat16, device=x.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["x"].float()
        n = x.shape[1] // 2
        return F.silu(x[:, :n]) * x[:, n:]

    def tolerance(self, dtype: str) -> Tolerance:
        # two bf16 roundings (activated gate, product): ~3e-3 rel. norm; GELU instead of SiLU, or gate and up
        # swapped, is > 1e-1.
        return Tolerance(1e-2, "bf16 activated gate and bf16 output (two roundings)")

    def flops(self, case: Case) -> float:
        p = case.params
        return 5.0 * p["R"] * p["N"]  # neg, exp, add, div, mul

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["R"] * p["N"] * (2 * 2 + 2)


SPEC = SiluAndMulSpec()
