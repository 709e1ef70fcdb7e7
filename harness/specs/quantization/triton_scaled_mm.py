"""Per-token x per-channel scaled 8-bit GEMM (catalog row 88, vLLM `scaled_mm_kernel` via `triton_scaled_mm`,
compressed-tensors W8A8 linear layers).

Math:   C[m, n] = sa[m] * sb[n] * sum_k A[m, k] * B[n, k]        (integer / fp32 accumulation, scales at the end)

Shapes: A [M, K] 8-bit activations with sa [M, 1] fp32 (dynamic per-token scale); B [N, K] 8-bit weight with
sb [N, 1] fp32 (static per-channel scale), handed to the kernel as the transposed [K, N] view as vLLM's linear
kernel does; C [M, N] bf16.

dtypes:
  int8_w8a8   int8 A and B (A as per_token_quant_int8 makes it, rounding), int32 accumulation.
  fp8_w8a8    float8_e4m3fn A and B (scale = amax / 448 per token / per channel), fp32 accumulation.

Cases: the dense MLP projections of models with an `mlp` section (gate_up: K = hidden, N = 2 * intermediate / tp;
down: K = intermediate / tp, N = hidden), every decode and prefill token count.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.quantization._common import FP8_MAX, INT8_MAX, awq_cases, round_half_away

INT8 = "int8_w8a8"
FP8 = "fp8_w8a8"


def quantize_rows(x: torch.Tensor, dtype: str) -> tuple[torch.Tensor, torch.Tensor]:
    """[R, C] float -> (8-bit [R, C], fp32 [R, 1]) with one scale per row."""
    amax = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-10)
    if dtype == INT8:
        s = amax / INT8_MAX
        return round_half_away(x / s).clamp(-128, 127).to(torch.int8), s
    s = amax / FP8_MAX
    return (x / s).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn), s


class TritonScaledMMSpec(KernelSpec):
    id = "triton_scaled_mm"
    category = "quantization"
    catalog_rows = (88,)
    token_dim = 'M'
    title = "W8A8 GEMM with per-token activation and per-channel weight scales (int8 / fp8), bf16 out"
    dtypes: ClassVar[tuple[str, ...]] = (INT8, FP8)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        out = []
        for regime in ("decode", "prefill"):
            for m in model.tokens(regime, quick=quick) if awq_cases(model) else []:
                for name, k, n in awq_cases(model):
                    out.append(Case(model.name, regime, {"M": m, "K": k, "N": n, "layer": name}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"M": 5, "K": 96, "N": 40, "layer": "test"}),
                Case("test", "test", {"M": 1, "K": 64, "N": 17, "layer": "test"})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"M": 33, "K": 512, "N": 320, "layer": "check"})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype not in self.dtypes:
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: {', '.join(self.dtypes)}")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(p["M"], p["K"], generator=g, device=device)
        w = torch.randn(p["N"], p["K"], generator=g, device=device) / p["K"] ** 0.5
        a, sa = quantize_rows(x, dtype)
        b, sb = quantize_rows(w, dtype)
        return {"A": a.contiguous(), "sa": sa.contiguous(), "B": b.contiguous(), "sb": sb.contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        a, b = inputs["A"], inputs["B"]
        return torch.empty(a.shape[0], b.shape[0], dtype=torch.bfloat16, device=a.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        with exact_fp32():
            # float64: int8 dot products reach K * 127^2, beyond fp32's exact integers
            acc = inputs["A"].double() @ inputs["B"].double().t()
        return (acc * inputs["sa"].double() * inputs["sb"].double().t()).float()

    def tolerance(self, dtype: str) -> Tolerance:
        # int8: exact integer accumulation, fp32 scaling, bf16 store (~1.1e-3 rel. norm); fp8: products exact in
        # fp32, accumulation order adds ~1e-6.  A missing scale or a transposed weight is O(1).
        return Tolerance(5e-3, "exact 8-bit operands in ref; bf16 output rounding")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["M"] * p["N"] * p["K"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        m, k, n = p["M"], p["K"], p["N"]
        return m * k + n * k + (m + n) * 4 + m * n * 2


SPEC = TritonScaledMMSpec()
