"""The gla_chunk contract on tiny odd shapes (the shared checks also run on gla_recurrent, from its own file)."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import check_call, compare
from harness.shapes import load_all
from harness.spec import Case
from harness.specs.linear.gla_chunk import SPEC as CHUNK_SPEC
from harness.specs.linear.gla_recurrent import SPEC as REC_SPEC
from tests.specs.test_gated_delta_rule_chunk_spec import OutputView

CPU = torch.device("cpu")
SPECS = [OutputView(CHUNK_SPEC, "o")]  # test_gla_recurrent_spec.py runs the same checks on REC_SPEC's o


def unrolled_gla(inp):
    """float64 closed form, no recurrence: o_t = scale * q_t^T (D(1..t) h0 + sum_{s <= t} D(s+1..t) k_s v_s^T),
    D(a..b) = diag(exp(sum_{r=a}^{b} gk_r))."""
    q, k, v = inp["q"][0].double(), inp["k"][0].double(), inp["v"][0].double()
    g, h0 = inp["gk"][0].double(), inp["h0"].double()
    out = torch.zeros_like(v)
    bounds = inp["cu_seqlens"].tolist()
    for n, (s0, e) in enumerate(zip(bounds[:-1], bounds[1:])):
        cum = torch.cumsum(g[s0:e], dim=0)  # [T, H, K]: sum_{r <= t} gk_r
        for t in range(s0, e):
            ti = t - s0
            acc = torch.einsum("hk,hkv->hv", q[t] * torch.exp(cum[ti]), h0[n])
            for s in range(s0, t + 1):
                decay = torch.exp(cum[ti] - cum[s - s0])  # prod over s < r <= t
                acc += torch.einsum("hk,hk,hv->hv", q[t], decay * k[s], v[s])
            out[t] = inp["scale"] * acc
    return out[None]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_reference_matches_unrolled_form(spec):
    for case in spec.test_cases():
        inp = spec.make_inputs(case, "bf16", CPU, seed=3)
        ref = spec.reference(inp, case, "bf16")
        assert ref.shape == spec.make_output(inp, case, "bf16").shape
        assert torch.allclose(ref.double(), unrolled_gla(inp), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_inputs_are_seeded_and_in_domain(spec):
    case = spec.test_cases()[0]
    a = spec.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["q"], spec.make_inputs(case, "bf16", CPU, seed=1)["q"])
    assert not torch.equal(a["q"], spec.make_inputs(case, "bf16", CPU, seed=2)["q"])
    assert bool((a["gk"] < 0).all()) and float(a["gk"].float().min()) > -2
    assert a["h0"].dtype == torch.float32 and a["h0"].abs().sum() > 0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_tolerance_rejects_planted_bugs(spec):
    case = spec.test_cases()[0]
    inp = spec.make_inputs(case, "bf16", CPU, seed=5)
    ref = spec.reference(inp, case, "bf16")
    tol = spec.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    bugs = {
        "gate ignored": inp | {"gk": torch.zeros_like(inp["gk"])},
        "initial state ignored": inp | {"h0": torch.zeros_like(inp["h0"])},
        "scale left out": inp | {"scale": 1.0},
    }
    for name, bad in bugs.items():
        assert not compare(spec.reference(bad, case, "bf16"), ref, tol).ok, name
    out = spec.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:, :-1].copy_(ref[:, :-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_final_state_is_named_and_checked():
    case = CHUNK_SPEC.test_cases()[0]
    inp = CHUNK_SPEC.make_inputs(case, "bf16", CPU, seed=4)
    out, ref, tol = (CHUNK_SPEC.make_output(inp, case, "bf16"), CHUNK_SPEC.reference(inp, case, "bf16"),
                     CHUNK_SPEC.tolerance("bf16"))
    assert set(out) == set(ref) == set(tol) == {"o", "final_state"}
    assert out["final_state"].shape == inp["h0"].shape and out["final_state"].dtype == torch.float32
    # the closed form of the final state: D(1..T) h0 + sum_s D(s+1..T) k_s v_s^T, per sequence
    q, k, v, g = (inp[x][0].double() for x in ("q", "k", "v", "gk"))
    bounds = inp["cu_seqlens"].tolist()
    for n, (s0, e) in enumerate(zip(bounds[:-1], bounds[1:])):
        cum = torch.cumsum(g[s0:e], dim=0)
        want = torch.exp(cum[-1])[..., None] * inp["h0"][n].double()
        for s in range(s0, e):
            want += (torch.exp(cum[-1] - cum[s - s0]) * k[s])[..., None] * v[s][:, None, :]
        assert torch.allclose(ref["final_state"][n].double(), want, rtol=1e-4, atol=1e-5)
    assert compare(ref | {"final_state": ref["final_state"] * (1 + 2e-3)}, ref, tol).ok
    assert not compare(ref | {"final_state": inp["h0"].clone()}, ref, tol).ok
    for name in ("gk", "h0"):
        wrong = CHUNK_SPEC.reference(inp | {name: torch.zeros_like(inp[name])}, case, "bf16")["final_state"]
        assert not compare(ref | {"final_state": wrong}, ref, tol).ok, name
    o_chunk = CHUNK_SPEC.reference(inp, case, "bf16")["o"]
    assert torch.allclose(o_chunk, unrolled_gla(inp).float(), rtol=1e-4, atol=1e-5)


def test_only_the_gla_model_gives_gla_cases():
    for model in load_all():
        if model.name != "gla-2.7b":
            assert CHUNK_SPEC.cases(model) == [] and REC_SPEC.cases(model) == []
            continue
        assert [c.params for c in CHUNK_SPEC.cases(model, quick=True)] == [
            {"T": 2048, "N": 1, "H": 5, "K": 256, "V": 512}]
        assert [c.params["N"] for c in REC_SPEC.cases(model, quick=True)] == [1, 32, 512]


def test_counts():
    c = Case("x", "prefill", {"T": 64, "N": 1, "H": 1, "K": 128, "V": 128})
    assert CHUNK_SPEC.flops(c) == 64 * (2 * 64 * 256 + 4 * 128 * 128)
    d = Case("x", "decode", {"N": 2, "H": 1, "K": 128, "V": 128})
    assert REC_SPEC.flops(d) == 2 * 5 * 128 * 128
    assert REC_SPEC.bytes(d, "bf16") == 2 * 2 * (3 * 128 + 2 * 128) + 2 * 4 * 2 * 128 * 128
