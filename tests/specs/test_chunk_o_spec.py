"""The chunk_o contract: token-by-token loops, chunk/state bookkeeping, planted bugs."""

from __future__ import annotations

import math

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.linear.chunk_o import CHUNK, SPEC

CPU = torch.device("cpu")


def looped_chunk_o(inp):
    q, k, v = inp["q"][0].double(), inp["k"][0].double(), inp["v"][0].double()
    g, h = inp["g"][0].double(), inp["h"][0].double()
    hv, hk = v.shape[1], q.shape[1]
    out = torch.zeros_like(v)
    bounds = inp["cu_seqlens"].tolist()
    ci = 0
    for s, e in zip(bounds[:-1], bounds[1:]):
        for c in range(s, e, CHUNK):
            for i in range(c, min(c + CHUNK, e)):
                for j in range(hv):
                    kh = j // (hv // hk)
                    acc = math.exp(g[i, j]) * (q[i, kh] @ h[ci, j])
                    for t in range(c, i + 1):
                        acc = acc + (q[i, kh] @ k[t, kh]) * math.exp(g[i, j] - g[t, j]) * v[t, j]
                    out[i, j] = inp["scale"] * acc
            ci += 1
    assert ci == h.shape[0]
    return out[None]


def test_reference_matches_loops():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        assert ref.shape == SPEC.make_output(inp, case, "bf16").shape
        assert torch.allclose(ref.double(), looped_chunk_o(inp), rtol=1e-4, atol=1e-5)


def test_inputs_are_seeded_and_in_domain():
    case = SPEC.test_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["h"], SPEC.make_inputs(case, "bf16", CPU, seed=1)["h"])
    assert not torch.equal(a["h"], SPEC.make_inputs(case, "bf16", CPU, seed=2)["h"])
    assert a["h"].shape == (1, 2 * 2, 2, 8, 6)  # 2 sequences x ceil(70 / 64) chunks
    assert bool((a["g"] < 0).all()) and a["v"].abs().sum() > 0
    assert torch.allclose(a["q"].float().norm(dim=-1), torch.ones(1, 140, 1), atol=1e-2)


def test_tolerance_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    bugs = {
        "gate ignored": inp | {"g": torch.zeros_like(inp["g"])},
        "h transposed": inp | {"h": inp["h"].transpose(-1, -2).reshape(inp["h"].shape)},
        "h of the wrong chunk": inp | {"h": inp["h"].roll(1, dims=1)},
        "scale left out": inp | {"scale": 1.0},
    }
    for name, bad in bugs.items():
        assert not compare(SPEC.reference(bad, case, "bf16"), ref, tol).ok, name
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:, :-1].copy_(ref[:, :-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_cases_and_counts():
    qwen = load_model("qwen3-next-80b-a3b")
    cases = SPEC.cases(qwen)
    assert cases and cases[0].params["HV"] == 8 and cases[0].params["V"] == 128
    assert SPEC.cases(load_model("mamba2-2.7b")) == []
    c = Case("x", "prefill", {"T": 64, "N": 1, "H": 1, "HV": 1, "K": 128, "V": 128})
    assert SPEC.flops(c) == 64 * (2 * 128 * 128 + 2 * 64 * 256)
    assert SPEC.bytes(c, "bf16") == 2 * (2 * 64 * 128 * 2 + 128 * 128) + 4 * 64
