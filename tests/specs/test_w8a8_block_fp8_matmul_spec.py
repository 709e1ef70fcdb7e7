"""The block-fp8 GEMM contract: reference vs a block-by-block loop, planted scale bugs, model cases."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.w8a8_block_fp8_matmul import FP8, SPEC

CPU = torch.device("cpu")


def blockwise(inp, skip_act_scale: bool = False) -> torch.Tensor:
    """C as the kernel forms it: per 128-wide K block, dot of raw fp8 values times a_s * b_s, in float64."""
    a, b = inp["A"].double(), inp["B"].double()
    a_s, b_s = inp["As"].double(), inp["Bs"].double()
    m, k = a.shape
    n = b.shape[0]
    c = torch.zeros(m, n, dtype=torch.float64)
    for kb in range(math.ceil(k / 128)):
        ks = slice(kb * 128, (kb + 1) * 128)
        part = a[:, ks] @ b[:, ks].t()
        sa = torch.ones(m, 1, dtype=torch.float64) if skip_act_scale else a_s[:, kb:kb + 1]
        sb = b_s[:, kb].repeat_interleave(128)[:n][None, :]
        c += part * sa * sb
    return c


def test_reference_matches_blockwise():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, FP8, CPU, seed=2)
        ref = SPEC.reference(inp, case, FP8)
        assert torch.allclose(ref.double(), blockwise(inp), rtol=1e-4, atol=1e-5)


def test_inputs_and_tolerance():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, FP8, CPU, seed=3)
    assert inp["A"].dtype == torch.float8_e4m3fn and inp["Bs"].shape == (4, 6) and inp["As"].shape == (33, 6)
    assert (inp["As"] > 0).all() and (inp["Bs"] > 0).all()
    ref = SPEC.reference(inp, case, FP8)
    tol = SPEC.tolerance(FP8)
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    assert not compare(blockwise(inp, skip_act_scale=True).float(), ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("deepseek-v3"), quick=True)
    layers = {(c.params["layer"], c.params["N"], c.params["K"]) for c in cases}
    assert ("q_a_proj", 1536, 7168) in layers and ("kv_a_proj", 576, 7168) in layers
    assert not SPEC.cases(load_model("gemma3-27b"))
    c = cases[0]
    assert SPEC.flops(c) == 2 * c.params["M"] * c.params["N"] * c.params["K"] and SPEC.bytes(c, FP8) > 0
