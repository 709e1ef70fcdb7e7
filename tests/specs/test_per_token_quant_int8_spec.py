"""The per-token int8 quant contract (round half away from zero): reference vs a naive loop, planted bugs."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.per_token_quant_int8 import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, truncate: bool = False) -> torch.Tensor:
    out = torch.empty(x.shape, dtype=torch.float64)
    for t in range(x.shape[0]):
        v = x[t].float()
        a = max(float(v.abs().max()), 1e-10)
        for j in range(x.shape[1]):
            y = float(v[j] * (127.0 / torch.tensor(a, dtype=torch.float32)))
            q = math.trunc(y) if truncate else math.copysign(math.floor(abs(y) + 0.5), y)
            out[t, j] = q * float(torch.tensor(a, dtype=torch.float32) / 127.0)
    return out


def test_reference_matches_naive_loop():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=8)
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.allclose(ref.double(), naive(inp["x"]), rtol=1e-6, atol=0)


def test_tolerance_rejects_truncation():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=9)
    ref = SPEC.reference(inp, case, "bf16")
    assert not compare(naive(inp["x"], truncate=True).float(), ref, SPEC.tolerance("bf16")).ok


def test_cases_from_model():
    assert len(SPEC.cases(load_model("gemma3-27b"))) == 8
