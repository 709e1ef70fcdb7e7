"""The AWQ GEMM contract: reference vs dequantize-then-matmul in float64, decode-only cases."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization._common import awq_unpack
from harness.specs.quantization.awq_gemm import SPEC

CPU = torch.device("cpu")


def test_reference_matches_float64_math():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "fp16", CPU, seed=1)
        g = case.params["G"]
        w = awq_unpack(inp["qweight"]).double()
        z = awq_unpack(inp["qzeros"]).double().repeat_interleave(g, 0)
        s = inp["scales"].double().repeat_interleave(g, 0)
        dense = inp["x"].double() @ ((w - z) * s)
        assert torch.allclose(SPEC.reference(inp, case, "fp16").double(), dense, rtol=1e-4, atol=1e-4)


def test_tolerance_rejects_missing_zero_point():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "fp16")
    tol = SPEC.tolerance("fp16")
    assert compare(ref.half(), ref, tol).ok
    w = awq_unpack(inp["qweight"]).float() * inp["scales"].float().repeat_interleave(128, 0)
    assert not compare(inp["x"].float() @ w, ref, tol).ok


def test_cases_decode_only():
    cases = SPEC.cases(load_model("gemma3-27b"))
    assert cases and all(c.params["M"] < 256 for c in cases)
