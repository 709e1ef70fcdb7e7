"""Per-token INT8 activation quantization (catalog row 61, vLLM `_per_token_quant_int8` in int8_utils; used by
w8a8 int8 linear layers).

Math, per token t over the whole row of H columns:

    a[t] = max(max_j |x[t, j]|, 1e-10);   s[t] = a[t] / 127
    q[t, j] = int8(round(x[t, j] * (127 / a[t])))        (CUDA libdevice round: halves away from zero)

Shapes: x [T, H] bf16.

Outputs (the kernel's own results, written by the timed call; no dequant epilogue):
    "q"  [T, H] int8, contiguous
    "s"  [T, 1] fp32 (what the upstream launcher allocates)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.quantization._common import (
    INT8_Q_ROW_REL,
    INT8_Q_ROW_SOURCE,
    SCALE_TOL,
    activation_inputs,
    int8_token_quant,
    token_cases,
)


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

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x = inputs["x"]
        t, h = x.shape
        return {"q": torch.empty(t, h, dtype=torch.int8, device=x.device),
                "s": torch.empty(t, 1, dtype=torch.float32, device=x.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        q, s = int8_token_quant(inputs["x"])
        return {"q": q, "s": s}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # exact-formula impls differ by rare one-ulp flips only (x * (127 / a) on a .5 boundary); truncating
        # instead of rounding lands >= 1.5e-2 from the ref (H = 128..7168, emulated), two flips in every row of
        # H = 128 2.7e-3 (the old 2e-3 bound on q * s would fail that); see _common.py for the per-row bound.
        return {"q": Tolerance(5e-3, "exact int8 quant emulated in ref; slack for 1-ulp boundary flips "
                                     "(truncating instead of rounding: >= 1.5e-2)",
                               row_rel=INT8_Q_ROW_REL, row_source=INT8_Q_ROW_SOURCE),
                "s": SCALE_TOL}

    def flops(self, case: Case) -> float:
        p = case.params
        return 3.0 * p["T"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * (2 + 1) + p["T"] * 4  # bf16 x in; int8 q, one fp32 scale per token out


SPEC = PerTokenQuantInt8Spec()
