"""The two-sided sliding-window attention forward contract (swa_attention) on tiny shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention import swa_attention as swa
from harness.specs.attention.swa_attention import SPEC, window_pairs

CPU = torch.device("cpu")


def naive_swa(inp) -> torch.Tensor:
    """Dense fp64 scores with a -inf band mask built element by element (as the upstream's own reference does
    with triu / tril)."""
    q, k, v = (inp[n].double() for n in ("q", "k", "v"))
    t, half = q.shape[2], inp["window"] // 2
    bias = torch.full((t, t), float("-inf"), dtype=torch.float64)
    for i in range(t):
        for j in range(t):
            if abs(i - j) <= half:
                bias[i, j] = 0.0
    s = q @ k.transpose(-1, -2) * inp["sm_scale"] + bias
    return torch.softmax(s, dim=-1) @ v


def test_reference_matches_naive(monkeypatch):
    monkeypatch.setattr(swa, "REF_CHUNK", 32)  # several query chunks even on the tiny shapes
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "fp16", CPU, seed=3)
        assert torch.allclose(SPEC.reference(inp, case, "fp16").double(), naive_swa(inp), rtol=1e-4, atol=1e-5)


def test_inputs_shapes_and_seed():
    case = SPEC.test_cases()[0]
    a = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    b = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    c = SPEC.make_inputs(case, "fp16", CPU, seed=2)
    assert torch.equal(a["q"], b["q"]) and not torch.equal(a["q"], c["q"])
    assert a["q"].shape == (2, 3, 96, 16) and a["q"].dtype == torch.float16 and a["v"].abs().sum() > 0
    assert SPEC.make_output(a, case, "fp16").shape == a["q"].shape
    assert math.isclose(a["sm_scale"], 16 ** -0.5) and a["window"] == 40


def test_tolerance_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "fp16")
    tol = SPEC.tolerance("fp16")
    assert compare(ref.half(), ref, tol).ok
    # bug: a causal (left-only) window
    t, half = inp["q"].shape[2], inp["window"] // 2
    s = inp["q"].float() @ inp["k"].float().transpose(-1, -2) * inp["sm_scale"]
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    causal = torch.softmax(s.masked_fill((j > i) | (i - j > half), float("-inf")), -1) @ inp["v"].float()
    assert not compare(causal, ref, tol).ok
    # bug: the window is W on each side instead of W / 2
    assert not compare(SPEC.reference(inp | {"window": 2 * inp["window"]}, case, "fp16"), ref, tol).ok
    # bug: half-window one short (the edge keys dropped)
    assert not compare(SPEC.reference(inp | {"window": inp["window"] - 2}, case, "fp16"), ref, tol).ok


def test_cases_from_model_yaml():
    gemma = load_model("gemma3-27b")
    cases = SPEC.cases(gemma)
    assert [c.params["T"] for c in cases] == [t for t in gemma.tokens("prefill") if t >= 1024]
    assert all(c.params == {"B": 1, "T": c.params["T"], "H": 32, "D": 128, "W": 1024} for c in cases)
    assert all(c.regime == "prefill" for c in cases)
    assert SPEC.cases(load_model("llama4-scout")) == []  # no sliding window
    assert SPEC.cases(load_model("mamba2-2.7b")) == []


def test_flop_and_byte_counts():
    assert window_pairs(5, 2) == 13  # |i - j| <= 1 on 5 tokens: 5 + 2 * 4
    assert window_pairs(4, 100) == 16  # window wider than the sequence: dense
    case = Case("t", "test", {"B": 2, "H": 3, "T": 64, "D": 16, "W": 40})
    assert SPEC.flops(case) == 4.0 * window_pairs(64, 40) * 2 * 3 * 16
    assert SPEC.bytes(case, "fp16") == 4 * 2 * 3 * 64 * 16 * 2
