"""The KDA recurrent decode contract: reference vs an explicit per-(sequence, head) loop, planted bugs, cases, and
the named final_state output."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.kda_fused_recurrent import SPEC

CPU = torch.device("cpu")


def naive_kda(inp) -> tuple[torch.Tensor, torch.Tensor]:
    """One (sequence, value head) at a time, vectors and an explicit K x V state in fp64; -> (o, final state)."""
    q, k, v = inp["q"].double(), inp["k"].double(), inp["v"].double()
    g, beta, s0 = inp["g"].double(), inp["beta"].double(), inp["initial_state"].double()
    b_n, t_n, h_n, _ = q.shape
    hv_n = v.shape[2]
    out = torch.zeros_like(v)
    final = torch.zeros_like(s0)
    for b in range(b_n):
        for hv in range(hv_n):
            h = hv // (hv_n // h_n)
            s = s0[b, hv].clone()
            for t in range(t_n):
                qt = q[b, t, h] / (q[b, t, h].dot(q[b, t, h]) + 1e-6).sqrt()
                kt = k[b, t, h] / (k[b, t, h].dot(k[b, t, h]) + 1e-6).sqrt()
                s = g[b, t, hv].exp()[:, None] * s
                s = s + beta[b, t, hv] * torch.outer(kt, v[b, t, hv] - s.t() @ kt)
                out[b, t, hv] = s.t() @ (qt * inp["scale"])
            final[b, hv] = s
    return out, final


def test_reference_matches_naive():
    for case in SPEC.test_cases() + SPEC.check_cases()[1:]:
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        o, final = naive_kda(inp)
        assert torch.allclose(ref["o"].double(), o, rtol=1e-4, atol=1e-5)
        assert torch.allclose(ref["final_state"].double(), final, rtol=1e-4, atol=1e-5)


def test_inputs_valid_and_seeded():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["q"], b["q"]) and torch.equal(a["initial_state"], b["initial_state"])
    assert (a["g"] < 0).all() and a["g"].dtype == torch.float32  # log-space decay
    assert ((a["beta"] > 0) & (a["beta"] < 1)).all()
    assert a["initial_state"].dtype == torch.float32 and a["initial_state"].abs().sum() > 0


def test_tolerance_rejects_planted_bugs():
    case = SPEC.check_cases()[1]
    for dtype in SPEC.dtypes:
        inp = SPEC.make_inputs(case, dtype, CPU, seed=5)
        full = SPEC.reference(inp, case, dtype)
        ref, tol = full["o"], SPEC.tolerance(dtype)["o"]
        assert compare(ref.to(inp["v"].dtype), ref, tol).ok
        # initial state ignored
        zero = inp | {"initial_state": torch.zeros_like(inp["initial_state"])}
        assert not compare(SPEC.reference(zero, case, dtype)["o"], ref, tol).ok
        # decay not applied
        assert not compare(SPEC.reference(inp | {"g": torch.zeros_like(inp["g"])}, case, dtype)["o"], ref, tol).ok
        # delta-rule correction dropped (beta = 0)
        no_beta = SPEC.reference(inp | {"beta": torch.zeros_like(inp["beta"])}, case, dtype)
        assert not compare(no_beta["o"], ref, tol).ok
        # the final state: named, fp32, and a stale or beta-less state fails its bound
        out, tols = SPEC.make_output(inp, case, dtype), SPEC.tolerance(dtype)
        assert set(out) == set(full) == set(tols) == {"o", "final_state"}
        assert out["final_state"].shape == inp["initial_state"].shape and out["final_state"].dtype == torch.float32
        assert compare(full, full, tols).ok
        assert not compare(full | {"final_state": inp["initial_state"].clone()}, full, tols).ok
        assert not compare(full | {"final_state": no_beta["final_state"]}, full, tols).ok


def test_cases_from_model_yaml():
    kimi = load_model("kimi-linear-48b-a3b")
    cases = SPEC.cases(kimi)
    assert [c.params["B"] for c in cases] == kimi.tokens("decode")
    assert cases[0].params == {"B": 1, "T": 1, "H": 16, "HV": 16, "K": 128, "V": 128}
    assert SPEC.cases(load_model("gemma3-27b")) == []


def test_flop_and_byte_counts():
    c = Case("x", "decode", {"B": 2, "T": 1, "H": 1, "HV": 1, "K": 4, "V": 8})
    assert SPEC.flops(c) == 7 * 2 * 4 * 8
    assert SPEC.bytes(c, "bf16") == 2 * (2 * 4 * 2 + 2 * 8 * 2 + 4 * 4 + 2) + 2 * 2 * 4 * 8 * 4
