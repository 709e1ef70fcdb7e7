"""The gated RMSNorm contract: reference vs a row/group loop, planted norm-before-gate bug, model cases."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.normalization.rms_norm_gated import SPEC

CPU = torch.device("cpu")


def naive(inp, group: int, eps: float, gate_after: bool = False) -> torch.Tensor:
    x, z, w = inp["x"].double(), inp["z"].double(), inp["weight"].double()
    gate = z * torch.sigmoid(z)
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        for g0 in range(0, x.shape[1], group):
            sl = slice(g0, g0 + group)
            u = x[t, sl] if gate_after else x[t, sl] * gate[t, sl]
            y = u / torch.sqrt((u * u).mean() + eps) * w[sl]
            out[t, sl] = y * gate[t, sl] if gate_after else y
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        ref = SPEC.reference(inp, case, "bf16").double()
        assert torch.allclose(ref, naive(inp, case.params["G"], case.params["eps"]), rtol=1e-4, atol=1e-5)


def test_tolerance_rejects_norm_before_gate():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.bfloat16(), ref, tol).ok
    assert not compare(naive(inp, case.params["G"], 1e-5, gate_after=True).float(), ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("mamba2-2.7b"), quick=True)
    assert cases and cases[0].params["D"] == 5120 and cases[0].params["G"] == 5120
    assert not SPEC.cases(load_model("deepseek-v3"))
