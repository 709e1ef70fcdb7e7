"""The per-token-group int8 quant contract (truncating cast): reference vs a naive loop, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.per_token_group_quant_int8 import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, group: int, rounding: bool = False) -> torch.Tensor:
    out = torch.empty(x.shape, dtype=torch.float64)
    for t in range(x.shape[0]):
        for g0 in range(0, x.shape[1], group):
            v = x[t, g0:g0 + group].float()
            s = torch.clamp(v.abs().max(), min=1e-10) / 127.0
            y = (v / s).clamp(-128, 127)
            q = torch.round(y) if rounding else y.to(torch.int8).float()  # torch's cast truncates too
            out[t, g0:g0 + group] = q.double() * s.double()
    return out


def test_reference_matches_naive_loop():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=4)
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.allclose(ref.double(), naive(inp["x"], case.params["G"]), rtol=1e-6, atol=0)


def test_tolerance_rejects_rounding_and_wrong_scale():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=6)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(naive(inp["x"], 128).float(), ref, tol).ok
    assert not compare(naive(inp["x"], 128, rounding=True).float(), ref, tol).ok
    assert not compare(inp["x"].float(), ref, tol).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)
