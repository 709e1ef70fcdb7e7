"""The chunk_scaled_dot_kkt contract: loops over (i, j) pairs, chunking per sequence, planted bugs."""

from __future__ import annotations

import math

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.linear.chunk_scaled_dot_kkt import CHUNK, SPEC

CPU = torch.device("cpu")


def looped_kkt(inp):
    k, beta, g = inp["k"][0].double(), inp["beta"][0].double(), inp["g"][0].double()
    length, h, _ = k.shape
    hv = beta.shape[1]
    out = torch.zeros(length, hv, CHUNK, dtype=torch.float64)
    bounds = inp["cu_seqlens"].tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        for i in range(s, e):
            c0 = s + (i - s) // CHUNK * CHUNK
            for j in range(c0, i):
                for v in range(hv):
                    kh = v // (hv // h)
                    out[i, v, j - c0] = beta[i, v] * (k[i, kh] @ k[j, kh]) * math.exp(g[i, v] - g[j, v])
    return out[None]


def test_reference_matches_loops():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        assert ref.shape == SPEC.make_output(inp, case, "bf16").shape
        assert torch.allclose(ref.double(), looped_kkt(inp), rtol=1e-5, atol=1e-6)


def test_inputs_are_chunk_local_cumsums():
    case = SPEC.test_cases()[0]  # T = 70: a second, partial chunk per sequence
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    c = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    assert torch.equal(a["g"], b["g"]) and not torch.equal(a["g"], c["g"])
    g = a["g"][0]
    # strictly decreasing inside a chunk (log decays < 0), restarting at 64 and at the second sequence (70)
    assert bool((g[1:64] < g[:63]).all()) and bool((g[64] > g[63]).all()) and bool((g[70] > g[69]).all())
    assert bool((a["beta"] > 0).all()) and bool((a["beta"] < 1).all())


def test_tolerance_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16).float(), ref, tol).ok
    assert not compare(SPEC.reference(inp | {"g": inp["g"] / math.log(2)}, case, "bf16"), ref, tol).ok  # log2 g
    assert not compare(SPEC.reference(inp | {"beta": torch.ones_like(inp["beta"])}, case, "bf16"), ref, tol).ok
    global_chunks = inp | {"cu_seqlens": inp["cu_seqlens"][[0, -1]]}  # chunks not restarted per sequence
    assert not compare(SPEC.reference(global_chunks, case, "bf16"), ref, tol).ok
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:, :-1].copy_(ref[:, :-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_cases_and_counts():
    qwen = load_model("qwen3-next-80b-a3b")
    cases = SPEC.cases(qwen)
    assert cases and cases[0].params == {"T": qwen.tokens("prefill")[0], "N": 1, "H": 4, "HV": 8, "K": 128}
    assert SPEC.cases(load_model("mamba2-2.7b")) == []
    c = Case("x", "prefill", {"T": 64, "N": 1, "H": 1, "HV": 1, "K": 128})
    assert SPEC.flops(c) == 64 * 64 * 128
    assert SPEC.bytes(c, "bf16") == 64 * (128 * 2 + 6 + 64 * 4)
