"""The SiLU-and-mul contract: reference vs scalar math, bf16 kernel rounding accepted, planted bugs rejected."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.activation._common import silu_mul_bf16
from harness.specs.activation.silu_and_mul import SPEC

CPU = torch.device("cpu")


def test_reference_matches_scalar_math():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    ref = SPEC.reference(inp, case, "bf16")
    n = case.params["N"]
    for r, j in [(0, 0), (6, 99), (3, 50)]:
        g, u = float(inp["x"][r, j]), float(inp["x"][r, n + j])
        assert math.isclose(float(ref[r, j]), g / (1 + math.exp(-g)) * u, rel_tol=1e-5, abs_tol=1e-6)


def test_tolerance():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(silu_mul_bf16(inp["x"]).to(torch.bfloat16), ref, tol).ok
    x = inp["x"].float()
    n = x.shape[1] // 2
    assert not compare(torch.nn.functional.gelu(x[:, :n]) * x[:, n:], ref, tol).ok
    assert not compare(torch.nn.functional.silu(x[:, n:]) * x[:, :n], ref, tol).ok


def test_cases_from_models():
    moe = SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)
    assert moe[0].params == {"R": 8, "N": 192}  # 1 token x top-8, 1536 / tp 8
    dense = SPEC.cases(load_model("gemma3-27b"), quick=True)
    assert dense[0].params == {"R": 1, "N": 21504}
