"""Static (per-tensor, calibrated-scale) FP8 activation quantization (catalog row 69, SGLang `static_quant_fp8`,
kernels/ops/quantization/fp8_kernel.py: the Triton path of apply_fp8_linear for checkpoints with a static
input_scale).

Math, with the checkpoint's scalar scale s (fp32, given, not computed from x):

    q[t, j] = float8_e4m3fn(clamp(x[t, j] * (1 / s), -448, 448))      (round to nearest even)

Shapes: x [T, H] bf16 (H = hidden_size, activations entering a linear layer); s [1] fp32; q [T, H] fp8.

Inputs: s stands for a calibration scale that does not track the batch: 0.9 * amax(x) / 448, so the batch's
largest values (|x| > 0.9 amax) saturate at +-448 and the clamp is exercised.

Output contract: out [T, H] fp32 = float(q) * s, written by the impl after the kernel in the same call (a torch
epilogue identical for every provider, as the other activation-quantization specs do; see _common.py).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.quantization._common import FP8_MAX, random_activations, token_cases

CALIBRATION_MARGIN = 0.9


def static_fp8_qdq(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """fp8(clamp(x * (1 / s))) * s in fp32 (the reciprocal is taken once in fp32, as the kernel does)."""
    s = scale.float().reshape(())
    inv = torch.reciprocal(s)
    q = (x.float() * inv).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn).float()
    return q * s


class StaticQuantFp8Spec(KernelSpec):
    id = "static_quant_fp8"
    category = "quantization"
    catalog_rows = (69,)
    token_dim = 'T'
    title = "Static per-tensor FP8 (e4m3) activation quantization with a calibrated scale"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_cases(model, quick, {})

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "H": 384}), Case("test", "test", {"T": 1, "H": 100})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 33, "H": 1024})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        x = random_activations(p["T"], p["H"], device, seed)
        scale = (x.float().abs().amax() * (CALIBRATION_MARGIN / FP8_MAX)).reshape(1)
        return {"x": x, "scale": scale.to(torch.float32).contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["x"]
        return torch.empty(x.shape, dtype=torch.float32, device=x.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return static_fp8_qdq(inputs["x"], inputs["scale"])

    def tolerance(self, dtype: str) -> Tolerance:
        # e4m3 quantization noise is ~2.5e-2 of ||x|| here, so no quantization (or a wrong scale) lands >= 2.5e-2
        # away; bf16 inputs times 1/s can sit on an fp8 rounding tie, and a device reciprocal one ulp off the IEEE
        # one flips such ties by one fp8 step: rare, ~1e-3 at most.
        return Tolerance(1e-2, "exact static fp8 qdq emulated in ref; slack for rounding-tie flips")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * p["H"]  # scale multiply and clamp per element

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * (2 + 4) + 4  # bf16 in, fp32 dequantized out (the contract's output), the scale


SPEC = StaticQuantFp8Spec()
