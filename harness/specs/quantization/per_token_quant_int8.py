"""Per-token INT8 activation quantization (catalog row 61, vLLM `_per_token_quant_int8` in int8_utils; used by
w8a8 int8 linear layers).

Math, per token t over the whole row of H columns:

    a[t] = max(max_j |x[t, j]|, 1e-10);   s[t] = a[t] / 127
    q[t, j] = int8(round(x[t, j] * (127 / a[t])))        (CUDA libdevice round: halves away from zero)

Shapes: x [T, H] bf16; q [T, H] int8; s [T, 1] fp32.

Output contract: out [T, H] fp32 = float(q) * s, written by the impl after the kernel in the same call (torch
epilogue, identical for every provider; see _common.py).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.quantization._common import activation_inputs, int8_token_qdq, token_cases


class PerTokenQuantInt8Spec(KernelSpec):
    id = "per_token_quant_int8"
    category = "quantization"
    catalog_rows = (61,)
    token_dim = 'T'
    title = "Per-token INT8 activation quantization (rounding)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_cases(model, quick, {})

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "H": 300}), Case("test", "test", {"T": 1, "H": 97})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 33, "H": 1000})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        return activation_inputs(case, device, seed)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["x"]
        return torch.empty(x.shape, dtype=torch.float32, device=x.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return int8_token_qdq(inputs["x"])

    def tolerance(self, dtype: str) -> Tolerance:
        # rounding noise is ~1e-2 of ||x|| (step = amax/127 over a whole row); truncating instead of rounding or
        # a wrong scale lands >= 5e-3 from the ref; exact-formula impls differ by rare one-ulp flips only.
        return Tolerance(2e-3, "exact int8 qdq emulated in ref; slack for 1-ulp boundary flips")

    def flops(self, case: Case) -> float:
        p = case.params
        return 3.0 * p["T"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * (2 + 4)


SPEC = PerTokenQuantInt8Spec()
