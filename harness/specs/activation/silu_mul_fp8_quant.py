"""SiLU-and-mul fused with per-token-group FP8 quantization, column-major scales (catalog row 75, vLLM
`_silu_mul_per_token_group_quant_fp8_colmajor`, the DeepGEMM fused-MoE activation step).

Math, rows r, group g of G = 128 output columns:

    y[r, j] = bf16( bf16(silu(x[r, j])) * x[r, N + j] )
    s[r, g] = max(max_{j in g} |y[r, j]|, 1e-10) * (1/448);   q[r, j] = fp8_e4m3(clamp(y[r, j] / s[r, g]))

Shapes: x [R, 2N] bf16; q [R, N] float8_e4m3fn; s [R, N / G] fp32 stored column-major (stride (1, R)).  The
launcher requires R % 128 == 0 and N % 128 == 0 (rows come expert-aligned in DeepGEMM's MoE layout), so cases
round R = tokens * top_k up to a multiple of 128 and skip models whose N = moe.intermediate_size / tp is not a
multiple of 128.

Output contract: out [R, N] fp32 = float(q) * s (dequantized), written after the kernel in the same call by the
torch epilogue shared with the quantization specs (see harness/specs/quantization/_common.py).  The reference
rounds like the kernel (bf16 activated gate, bf16 product) and then quantizes exactly, so the check sees the
activation and the quantization together.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.activation._common import random_gate_up, silu_mul_bf16
from harness.specs.quantization._common import fp8_group_qdq

GROUP = 128


class SiluMulFp8QuantSpec(KernelSpec):
    id = "silu_mul_fp8_quant"
    category = "activation"
    catalog_rows = (75,)
    token_dim = 'tokens'
    title = "SiLU-and-mul + per-token-group-128 FP8 quantization (column-major scales)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not (model.has("moe.intermediate_size") and model.has("moe.top_k")):
            return []
        n = int(model.get("moe.intermediate_size")) // model.tp
        if n % GROUP:
            return []
        top_k = int(model.get("moe.top_k"))
        out = []
        for regime in ("decode", "prefill"):
            for t in model.tokens(regime, quick=quick):
                r = math.ceil(t * top_k / GROUP) * GROUP
                out.append(Case(model.name, regime, {"R": r, "N": n, "G": GROUP, "tokens": t}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"R": 8, "N": 96, "G": 32, "tokens": 8}),
                Case("test", "test", {"R": 4, "N": 64, "G": 64, "tokens": 4})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"R": 128, "N": 256, "G": GROUP, "tokens": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        return {"x": random_gate_up(case.params["R"], case.params["N"], device, seed)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["x"]
        return torch.empty(x.shape[0], x.shape[1] // 2, dtype=torch.float32, device=x.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return fp8_group_qdq(silu_mul_bf16(inputs["x"]), case.params["G"])

    def tolerance(self, dtype: str) -> Tolerance:
        # as per_token_group_quant_fp8 (fp8 noise ~2.6e-2, so a missing quantization or wrong group fails), plus
        # one-ulp bf16 differences in silu (device exp vs torch exp) that can move q across a rounding tie.
        return Tolerance(1e-2, "kernel's bf16 rounding + exact fp8 qdq emulated in ref; slack for tie flips")

    def flops(self, case: Case) -> float:
        p = case.params
        return 8.0 * p["R"] * p["N"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["R"] * p["N"] * (2 * 2 + 4)  # bf16 [gate | up] in, fp32 dequantized out


SPEC = SiluMulFp8QuantSpec()
