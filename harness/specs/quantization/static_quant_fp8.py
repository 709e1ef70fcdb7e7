"""Static (per-tensor, calibrated-scale) FP8 activation quantization (catalog row 69, SGLang `static_quant_fp8`,
kernels/ops/quantization/fp8_kernel.py: the Triton path of apply_fp8_linear for checkpoints with a static
input_scale).

Math, with the checkpoint's scalar scale s (fp32, given, not computed from x):

    q[t, j] = float8_e4m3fn(clamp(x[t, j] * (1 / s), -448, 448))      (round to nearest even)

Shapes: x [T, H] bf16 (H = hidden_size, activations entering a linear layer); s [1] fp32; q [T, H] fp8.

Inputs: s stands for a calibration scale that does not track the batch: 0.9 * amax(x) / 448, so the batch's
largest values (|x| > 0.9 amax) saturate at +-448 and the clamp is exercised.

Outputs (the kernel's own result, written by the timed call; no dequant epilogue):
    "q"  [T, H] float8_e4m3fn, contiguous
No scale output: s is an input (the launcher returns it back unchanged with repeat_scale=False).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.quantization._common import FP8_MAX, FP8_Q_ROW_REL, FP8_Q_ROW_SOURCE, random_activations, token_cases

CALIBRATION_MARGIN = 0.9


def static_fp8_quant(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """q = fp8(clamp(x * (1 / s))) [T, H] float8_e4m3fn (the reciprocal is taken once in fp32, as the kernel does)."""
    s = scale.float().reshape(())
    inv = torch.reciprocal(s)
    return (x.float() * inv).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)


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

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x = inputs["x"]
        return {"q": torch.empty(x.shape, dtype=torch.float8_e4m3fn, device=x.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return {"q": static_fp8_quant(inputs["x"], inputs["scale"])}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # e4m3 quantization noise is ~2.7e-2 of ||q|| here, so no quantization lands >= 2.6e-2 away and a scale
        # taken from the batch instead of the input (q ~0.9x) ~0.1; bf16 inputs times 1/s can sit on an fp8
        # rounding tie, and a device reciprocal one ulp off the IEEE one flips such ties by one fp8 step: rare.
        # Per row see _common.py (saturated +-448 elements flip by 32: two such flips in a row of 128 give 4.6e-2).
        return {"q": Tolerance(1e-2, "exact static fp8 quant emulated in ref; slack for rounding-tie flips "
                                     "(no quantization 2.6e-2)",
                               row_rel=FP8_Q_ROW_REL, row_source=FP8_Q_ROW_SOURCE)}

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * p["H"]  # scale multiply and clamp per element

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * (2 + 1) + 4  # bf16 x in, fp8 q out, the scalar scale in


SPEC = StaticQuantFp8Spec()
