"""AWQ int4 GEMM (catalog row 87, vLLM `awq_gemm_kernel`, split-K over K with a torch sum of the partials).

Math, group size G = 128 along K:

    C[m, n] = sum_k x[m, k] * (w4[k, n] - z4[k // G, n]) * s[k // G, n]

Shapes: x [M, K] fp16; qweight [K, N / 8] int32; qzeros [K / G, N / 8] int32 (AutoAWQ packing, see _common.py);
scales [K / G, N] fp16; C [M, N] fp16.

Cases: the dense MLP projections of models with an `mlp` section (as awq_dequantize), decode token counts
below 256 only: vLLM's AWQ linear calls this kernel (with split_k_iters = pack_factor = 8) when the call has
fewer than 256 tokens and dequantize + fp16 matmul otherwise.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.quantization._common import awq_cases, awq_dequant_ref, awq_weight_inputs

GROUP = 128
MAX_TOKENS = 256  # vLLM's FP16_MATMUL_HEURISTIC_CONDITION threshold


class AwqGemmSpec(KernelSpec):
    id = "awq_gemm"
    category = "quantization"
    catalog_rows = (87,)
    token_dim = 'M'
    title = "AWQ int4 x fp16 GEMM (group 128), decode sizes"
    dtypes: ClassVar[tuple[str, ...]] = ("fp16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        out = []
        for m in model.tokens("decode", quick=quick) if awq_cases(model) else []:
            if m >= MAX_TOKENS:
                continue
            for name, k, n in awq_cases(model):
                out.append(Case(model.name, "decode", {"M": m, "K": k, "N": n, "G": GROUP, "layer": name}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"M": 3, "K": 96, "N": 40, "G": 32, "layer": "test"}),
                Case("test", "test", {"M": 1, "K": 256, "N": 24, "G": 128, "layer": "test"})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"M": 17, "K": 512, "N": 264, "G": GROUP, "layer": "check"})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "fp16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: fp16")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        inputs = awq_weight_inputs(p["K"], p["N"], p["G"], device, g)
        inputs["x"] = torch.randn(p["M"], p["K"], generator=g, device=device).to(torch.float16)
        return inputs

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["x"]
        return torch.empty(x.shape[0], inputs["scales"].shape[1], dtype=torch.float16, device=x.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        w = awq_dequant_ref(inputs["qweight"], inputs["qzeros"], inputs["scales"])
        with exact_fp32():
            return inputs["x"].float() @ w

    def tolerance(self, dtype: str) -> Tolerance:
        # the kernel dequantizes to fp16 (one rounding), accumulates in fp32, stores fp16 split-K partials and
        # sums them in fp16: ~1e-3 rel. norm; a wrong nibble order or zero point gives O(1).
        return Tolerance(5e-3, "fp16 dequantized operand, fp16 split-K partials and output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["M"] * p["N"] * p["K"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        m, k, n, g = p["M"], p["K"], p["N"], p["G"]
        groups = math.ceil(k / g)
        return m * k * 2 + k * n / 2 + groups * n / 2 + groups * n * 2 + m * n * 2


SPEC = AwqGemmSpec()
