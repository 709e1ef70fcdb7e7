"""The rwkv6_recurrent contract on tiny odd shapes; the RWKV-7 / RWKV-4 naive forms live here too and their own
files run the shared checks with them."""

from __future__ import annotations

import math

import pytest
import torch

from harness.correctness import check_call, compare
from harness.shapes import load_all
from harness.spec import Case
from harness.specs.linear.rwkv4_recurrent import SPEC as RWKV4
from harness.specs.linear.rwkv6_recurrent import SPEC as RWKV6
from harness.specs.linear.rwkv7_recurrent import SPEC as RWKV7

CPU = torch.device("cpu")
SPECS = [RWKV6]  # test_rwkv7_recurrent_spec.py / test_rwkv4_recurrent_spec.py run the same checks


def primary(x):
    """The token output of a spec's outputs / reference / tolerance (RWKV-6/7 name it `o` next to final_state)."""
    return x["o"] if isinstance(x, dict) else x


def looped_rwkv6(inp):
    """float64, element by element over (k, v) of the state."""
    r, k, v, w = (inp[x][0].double() for x in ("r", "k", "v", "w"))
    u = inp["u"].double()
    _, h, kd = r.shape
    out = torch.zeros_like(v)
    bounds = inp["cu_seqlens"].tolist()
    for n in range(len(bounds) - 1):
        s = inp["h0"][n].double().clone()
        for t in range(bounds[n], bounds[n + 1]):
            for i in range(h):
                for a in range(kd):
                    out[t, i] += inp["scale"] * r[t, i, a] * (s[i, a] + u[i, a] * k[t, i, a] * v[t, i])
                    s[i, a] = math.exp(w[t, i, a]) * s[i, a] + k[t, i, a] * v[t, i]
    return out[None]


def matrix_rwkv7(inp):
    """float64 in the transition-matrix form S_t = (diag(e^w) - (kk * a) kk^T) S_{t-1} + k v^T."""
    r, w, k, v, kk, a = (inp[x][0].double() for x in ("r", "w", "k", "v", "kk", "a"))
    out = torch.zeros_like(v)
    bounds = inp["cu_seqlens"].tolist()
    for n in range(len(bounds) - 1):
        s = inp["h0"][n].double().clone()
        for t in range(bounds[n], bounds[n + 1]):
            for i in range(r.shape[1]):
                trans = torch.diag(torch.exp(w[t, i])) - torch.outer(kk[t, i] * a[t, i], kk[t, i])
                s[i] = trans @ s[i] + torch.outer(k[t, i], v[t, i])
                out[t, i] = inp["scale"] * s[i].T @ r[t, i]
    return out[None]


def stabilized_rwkv4(inp):
    """float64 replay of the stabilized (alpha, beta, eps) recurrence, as RWKV-4's CUDA kernel writes it."""
    k, v = inp["k"].double(), inp["v"].double()
    w, u = -torch.exp(inp["w"].double()), inp["u"].double()
    st = inp["state"][:, :, 0].double()
    alpha, beta, eps = st[:, 0], st[:, 1], st[:, 2]
    out = torch.empty_like(k)
    for t in range(k.shape[1]):
        kt, vt = k[:, t], v[:, t]
        tau = torch.maximum(u + kt, eps)
        e1, e2 = torch.exp(eps - tau), torch.exp(u + kt - tau)
        out[:, t] = (e1 * alpha + e2 * vt) / (e1 * beta + e2)
        w_eps = w + eps
        eps = torch.maximum(w_eps, kt)
        e1, e2 = torch.exp(w_eps - eps), torch.exp(kt - eps)
        alpha, beta = e1 * alpha + e2 * vt, e1 * beta + e2
    return out


NAIVE = {RWKV6.id: looped_rwkv6, RWKV7.id: matrix_rwkv7, RWKV4.id: stabilized_rwkv4}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_reference_matches_independent_form(spec):
    dtype = spec.dtypes[0]
    for case in spec.test_cases():
        inp = spec.make_inputs(case, dtype, CPU, seed=3)
        ref = primary(spec.reference(inp, case, dtype))
        assert ref.shape == primary(spec.make_output(inp, case, dtype)).shape
        assert torch.allclose(ref.double(), NAIVE[spec.id](inp), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_inputs_are_seeded_and_in_domain(spec):
    dtype = spec.dtypes[0]
    case = spec.test_cases()[0]
    a = spec.make_inputs(case, dtype, CPU, seed=1)
    assert torch.equal(a["k"], spec.make_inputs(case, dtype, CPU, seed=1)["k"])
    assert not torch.equal(a["k"], spec.make_inputs(case, dtype, CPU, seed=2)["k"])
    if spec is RWKV4:
        assert bool((a["state"][:, 1] > 0).all())  # positive denominator
    else:
        assert bool((a["w"] < 0).all()) and a["h0"].abs().sum() > 0
    if spec is RWKV7:
        assert bool((a["w"] > -0.61).all()) and bool((a["a"] > 0).all()) and bool((a["a"] < 1).all())
        assert torch.allclose(a["kk"].float().norm(dim=-1), torch.ones(a["kk"].shape[:-1]), atol=1e-2)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_tolerance_rejects_planted_bugs(spec):
    dtype = spec.dtypes[0]
    case = spec.test_cases()[0]
    inp = spec.make_inputs(case, dtype, CPU, seed=5)
    ref = primary(spec.reference(inp, case, dtype))
    tol = primary(spec.tolerance(dtype))
    if dtype == "bf16":
        assert compare(ref.to(torch.bfloat16), ref, tol).ok
    if spec is RWKV6:
        bugs = {"bonus dropped": inp | {"u": torch.zeros_like(inp["u"])},
                "decay not exponentiated": inp | {"w": torch.zeros_like(inp["w"])}}
    elif spec is RWKV7:
        bugs = {"no removal term": inp | {"a": torch.zeros_like(inp["a"])},
                "decay ignored": inp | {"w": torch.zeros_like(inp["w"])}}
    else:
        no_alpha = inp["state"] * torch.tensor([0.0, 1.0, 1.0])[None, :, None, None]
        bugs = {"bonus dropped": inp | {"u": torch.zeros_like(inp["u"])},
                "decay off by e": inp | {"w": inp["w"] + 1.0},
                "initial numerator ignored": inp | {"state": no_alpha}}
    for name, bad in bugs.items():
        assert not compare(primary(spec.reference(bad, case, dtype)), ref, tol).ok, name
    out = primary(spec.make_output(inp, case, dtype))
    res = check_call(lambda: out.view(-1)[:-1].copy_(ref.reshape(-1)[:-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


@pytest.mark.parametrize("spec", [RWKV6, RWKV7], ids=lambda s: s.id)
def test_final_state_is_named_and_checked(spec):
    case = spec.test_cases()[0]
    inp = spec.make_inputs(case, "bf16", CPU, seed=6)
    out, ref, tol = spec.make_output(inp, case, "bf16"), spec.reference(inp, case, "bf16"), spec.tolerance("bf16")
    assert set(out) == set(ref) == set(tol) == {"o", "final_state"}
    assert ref["final_state"].shape == inp["h0"].shape and out["final_state"].dtype == torch.float32
    # the last state of a sequence is what a one-token continuation starts from: o of the next token matches
    nxt = spec.make_inputs(Case("t", "test", {**case.params, "T": 1}), "bf16", CPU, seed=8)
    one = spec.reference(nxt | {"h0": ref["final_state"]}, case, "bf16")["o"]
    assert torch.isfinite(one).all()
    assert not compare(ref | {"final_state": inp["h0"].clone()}, ref, tol).ok


def test_only_the_rwkv_models_give_rwkv_cases():
    owner = {RWKV6: "rwkv6-7b-finch", RWKV7: "rwkv7-1.5b-world", RWKV4: "rwkv4-3b-pile"}
    for model in load_all():
        for spec, name in owner.items():
            assert bool(spec.cases(model)) == (model.name == name), (spec.id, model.name)
    dims = {m.name: RWKV6.cases(m)[0].params for m in load_all() if m.name == "rwkv6-7b-finch"}
    assert dims["rwkv6-7b-finch"] == {"T": 1, "N": 1, "H": 64, "K": 64, "V": 64}


def test_counts():
    assert RWKV6.flops(Case("x", "t", {"T": 2, "N": 1, "H": 1, "K": 64, "V": 64})) == 2 * 7 * 64 * 64
    assert RWKV7.flops(Case("x", "t", {"T": 1, "N": 3, "H": 1, "K": 64, "V": 64})) == 3 * 9 * 64 * 64
    c = Case("x", "t", {"B": 1, "T": 10, "C": 8})
    assert RWKV4.bytes(c, "fp32") == 3 * 10 * 8 * 4 + 3 * 8 * 4 + 2 * 8 * 4
