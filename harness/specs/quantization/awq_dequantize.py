"""AWQ int4 weight dequantization (catalog rows 59 vLLM `awq_dequantize_kernel`, 60 SGLang `awq_dequantize_kernel`).

Math, group size G along K (128, the AutoAWQ default):

    W[k, n] = (w4[k, n] - z4[k // G, n]) * s[k // G, n]

Shapes: qweight [K, N / 8] int32 (8 nibbles per int32 in AutoAWQ's interleaved order, see _common.py);
qzeros [K / G, N / 8] int32 (same packing); scales [K / G, N] fp16; out W [K, N] fp16.

Cases: the dense MLP projections of models with an `mlp` section (AWQ int4 checkpoints are dense models):
gate_up (K = hidden_size, N = 2 * intermediate_size / tp) and down (K = intermediate_size / tp,
N = hidden_size).  vLLM uses this kernel for every AWQ linear call with >= 256 tokens (dequantize, then an fp16
matmul); its cost does not depend on the token count, so there is one case per layer (regime "prefill").
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.quantization._common import awq_cases, awq_dequant_ref, awq_weight_inputs

GROUP = 128


class AwqDequantizeSpec(KernelSpec):
    id = "awq_dequantize"
    category = "quantization"
    catalog_rows = (59, 60)
    token_dim = None
    title = "AWQ int4 weight dequantization (group 128) to fp16"
    dtypes: ClassVar[tuple[str, ...]] = ("fp16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return [Case(model.name, "prefill", {"K": k, "N": n, "G": GROUP, "layer": name})
                for name, k, n in awq_cases(model)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"K": 96, "N": 40, "G": 32, "layer": "test"}),
                Case("test", "test", {"K": 256, "N": 24, "G": 128, "layer": "test"})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"K": 512, "N": 264, "G": GROUP, "layer": "check"})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "fp16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: fp16")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        return awq_weight_inputs(p["K"], p["N"], p["G"], device, g)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        s = inputs["scales"]
        return torch.empty(inputs["qweight"].shape[0], s.shape[1], dtype=torch.float16, device=s.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return awq_dequant_ref(inputs["qweight"], inputs["qzeros"], inputs["scales"])

    def tolerance(self, dtype: str) -> Tolerance:
        # one fp16 rounding of an exact small-integer x fp16 product: <= 2^-11 relative per element
        # (~3e-4 rel. norm); a wrong nibble order or zero point gives O(1).
        return Tolerance(1e-3, "fp16 output rounding of exact (w - z) * s")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["K"] * p["N"]  # subtract, multiply per element

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        k, n, g = p["K"], p["N"], p["G"]
        return k * n / 2 + (k // g) * n / 2 + (k // g) * n * 2 + k * n * 2


SPEC = AwqDequantizeSpec()
