"""The per-token int8 quant contract (round half away from zero; outputs q [T, H] int8, s [T, 1] fp32): reference
vs a naive loop, planted bugs."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.per_token_quant_int8 import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, truncate: bool = False) -> dict[str, torch.Tensor]:
    t, h = x.shape
    q = torch.empty(t, h, dtype=torch.int8)
    s = torch.empty(t, 1, dtype=torch.float32)
    for i in range(t):
        v = x[i].float()
        a = torch.tensor(max(float(v.abs().max()), 1e-10), dtype=torch.float32)
        for j in range(h):
            y = float(v[j] * (127.0 / a))
            q[i, j] = math.trunc(y) if truncate else int(math.copysign(math.floor(abs(y) + 0.5), y))
        s[i, 0] = a / 127.0
    return {"q": q, "s": s}


def test_reference_matches_naive_loop():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=8)
        ref = SPEC.reference(inp, case, "bf16")
        exp = naive(inp["x"])
        assert torch.equal(ref["q"], exp["q"]) and torch.equal(ref["s"], exp["s"])
        out = SPEC.make_output(inp, case, "bf16")
        assert out["q"].dtype == torch.int8 and out["s"].shape == (case.params["T"], 1)


def test_tolerance_rejects_truncation_and_wrong_scale():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=9)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert not compare({"q": naive(inp["x"], truncate=True)["q"], "s": ref["s"]}, ref, tol).ok
    assert not compare({"q": ref["q"], "s": ref["s"] * (1 + 1e-5)}, ref, tol).ok
    # two one-step flips per row (the largest elements): within both bounds
    q = ref["q"].clone()
    idx = q.float().abs().topk(2, dim=1).indices
    rows = torch.arange(q.shape[0])[:, None]
    q[rows, idx] -= torch.sign(q[rows, idx])
    assert compare({"q": q, "s": ref["s"]}, ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("gemma3-27b"))
    assert len(cases) == 8
    c = cases[0]
    assert SPEC.bytes(c, "bf16") == c.params["T"] * (c.params["H"] * 3 + 4)
