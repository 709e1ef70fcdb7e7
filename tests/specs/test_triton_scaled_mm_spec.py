"""The scaled 8-bit GEMM contract: reference vs an element-wise dot, planted scale bug, both dtypes."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.triton_scaled_mm import FP8, INT8, SPEC

CPU = torch.device("cpu")


def test_reference_matches_element_dots():
    for dtype in (INT8, FP8):
        case = SPEC.test_cases()[0]
        inp = SPEC.make_inputs(case, dtype, CPU, seed=1)
        ref = SPEC.reference(inp, case, dtype)
        for m, n in [(0, 0), (4, 39), (2, 7)]:
            dot = sum(float(inp["A"][m, k].float()) * float(inp["B"][n, k].float()) for k in range(case.params["K"]))
            want = dot * float(inp["sa"][m, 0]) * float(inp["sb"][n, 0])
            assert abs(float(ref[m, n]) - want) <= 1e-5 * max(1.0, abs(want))


def test_tolerance_rejects_missing_weight_scale():
    case = SPEC.check_cases()[0]
    for dtype in (INT8, FP8):
        inp = SPEC.make_inputs(case, dtype, CPU, seed=2)
        ref = SPEC.reference(inp, case, dtype)
        tol = SPEC.tolerance(dtype)
        assert compare(ref.to(torch.bfloat16), ref, tol).ok
        bad = SPEC.reference(inp | {"sb": torch.ones_like(inp["sb"]) * inp["sb"].mean()}, case, dtype)
        assert not compare(bad, ref, tol).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("gemma3-27b"), quick=True)
    assert not SPEC.cases(load_model("deepseek-v3"))
