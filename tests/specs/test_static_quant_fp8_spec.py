"""The static FP8 quant contract: reference vs a per-element loop, the clamp is exercised, planted bugs fail."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.static_quant_fp8 import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, s: float, clamp: bool = True, scale_from_batch: bool = False) -> torch.Tensor:
    if scale_from_batch:
        s = float(x.float().abs().max()) / 448.0
    inv = torch.tensor(1.0, dtype=torch.float32) / torch.tensor(s, dtype=torch.float32)
    out = torch.empty(x.shape, dtype=torch.float64)
    for i in range(x.shape[0]):
        y = x[i].float() * inv
        if clamp:
            y = y.clamp(-448.0, 448.0)
        out[i] = y.to(torch.float8_e4m3fn).double() * s
    return out


def test_reference_matches_loop_and_saturates():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        s = float(inp["scale"])
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.allclose(ref.double(), naive(inp["x"], s), rtol=1e-6, atol=0)
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=3)
    assert (inp["x"].float().abs() / inp["scale"] > 448).any()  # the static scale saturates the batch's outliers


def test_tolerance_rejects_batch_scale_and_no_quant():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=7)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert not compare(inp["x"].float(), ref, tol).ok
    assert not compare(naive(inp["x"], float(inp["scale"]), scale_from_batch=True).float(), ref, tol).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)[0].params == {"T": 1, "H": 4096}
