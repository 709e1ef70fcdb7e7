"""The static FP8 quant contract (one output q [T, H] fp8; the scale is an input): reference vs a per-element loop,
the clamp is exercised, planted bugs fail."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.static_quant_fp8 import SPEC

CPU = torch.device("cpu")
F8 = torch.float8_e4m3fn


def naive(x: torch.Tensor, s: float, clamp: bool = True, scale_from_batch: bool = False) -> torch.Tensor:
    if scale_from_batch:
        s = float(x.float().abs().max()) / 448.0
    inv = torch.tensor(1.0, dtype=torch.float32) / torch.tensor(s, dtype=torch.float32)
    out = torch.empty(x.shape, dtype=F8)
    for i in range(x.shape[0]):
        y = x[i].float() * inv
        if clamp:
            y = y.clamp(-448.0, 448.0)
        out[i] = y.to(F8)
    return out


def test_reference_matches_loop_and_saturates():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        s = float(inp["scale"])
        ref = SPEC.reference(inp, case, "bf16")
        assert set(ref) == {"q"} and set(SPEC.make_output(inp, case, "bf16")) == {"q"}
        assert torch.equal(ref["q"].float(), naive(inp["x"], s).float())
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=3)
    assert (inp["x"].float().abs() / inp["scale"] > 448).any()  # the static scale saturates the batch's outliers


def test_tolerance_rejects_batch_scale_and_no_quant():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=7)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    unrounded = (inp["x"].float() / inp["scale"]).clamp(-448, 448)
    assert not compare({"q": unrounded}, ref, tol).ok
    assert not compare({"q": naive(inp["x"], float(inp["scale"]), scale_from_batch=True)}, ref, tol).ok
    # two one-step flips of the largest elements (saturated +-448 -> +-416) in a few rows: within both bounds
    rows = torch.tensor([[0], [5], [20]])
    idx = ref["q"][rows[:, 0]].float().abs().topk(2, dim=1).indices
    bits = ref["q"].view(torch.uint8).clone()
    bits[rows, idx] -= 1
    res = compare({"q": bits.view(F8)}, ref, tol)
    assert res.ok and res.row_err > 1e-2, res


def test_cases_from_model():
    c = SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)[0]
    assert c.params == {"T": 1, "H": 4096} and SPEC.bytes(c, "bf16") == 4096 * 3 + 4
