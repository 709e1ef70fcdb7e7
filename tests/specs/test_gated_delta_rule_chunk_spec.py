"""The gated-delta-rule contracts (chunked prefill and recurrent decode) on tiny odd shapes."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.linear.gated_delta_rule_chunk import SPEC as CHUNK_SPEC
from harness.specs.linear.gated_delta_rule_recurrent import SPEC as REC_SPEC

CPU = torch.device("cpu")


class OutputView:
    """A named-output spec seen through one output (the shared checks below compare one tensor;
    test_gated_delta_rule_recurrent_spec.py runs them on its decode spec's `o` the same way)."""

    def __init__(self, spec, name: str) -> None:
        self._spec, self._name = spec, name

    def __getattr__(self, attr):
        return getattr(self._spec, attr)

    def make_output(self, *a):
        return self._spec.make_output(*a)[self._name]

    def reference(self, *a):
        return self._spec.reference(*a)[self._name]

    def tolerance(self, dtype):
        return self._spec.tolerance(dtype)[self._name]


SPECS = [OutputView(CHUNK_SPEC, "o")]


def householder_reference(inp, states: bool = False):
    """float64, head by head, in the product form S_t = (I - b k k^T) e^g S_{t-1} + b k v^T; o = scale S^T q.
    Returns o, or (o, final states) with `states`."""
    q, k, v = inp["q"][0].double(), inp["k"][0].double(), inp["v"][0].double()
    g, beta, h0 = inp["g"][0].double(), inp["beta"][0].double(), inp["h0"].double()
    hv, hk = v.shape[1], q.shape[1]
    out = torch.zeros_like(v)
    finals = torch.zeros_like(h0)
    bounds = inp["cu_seqlens"].tolist()
    for n in range(len(bounds) - 1):
        for j in range(hv):
            i = j // (hv // hk)
            s = h0[n, j].clone()
            for t in range(bounds[n], bounds[n + 1]):
                kt = k[t, i][:, None]
                eye = torch.eye(kt.shape[0], dtype=torch.float64)
                s = (eye - beta[t, j] * kt @ kt.T) @ (torch.exp(g[t, j]) * s) + beta[t, j] * kt @ v[t, j][None]
                out[t, j] = inp["scale"] * s.T @ q[t, i]
            finals[n, j] = s
    return (out[None], finals) if states else out[None]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_reference_matches_product_form(spec):
    for case in spec.test_cases():
        inp = spec.make_inputs(case, "bf16", CPU, seed=3)
        ref = spec.reference(inp, case, "bf16")
        assert ref.shape == spec.make_output(inp, case, "bf16").shape
        assert torch.allclose(ref.double(), householder_reference(inp), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_inputs_are_seeded_and_in_domain(spec):
    case = spec.test_cases()[0]
    a = spec.make_inputs(case, "bf16", CPU, seed=1)
    b = spec.make_inputs(case, "bf16", CPU, seed=1)
    c = spec.make_inputs(case, "bf16", CPU, seed=2)
    assert torch.equal(a["v"], b["v"]) and not torch.equal(a["v"], c["v"])
    for name in ("q", "k"):
        norms = a[name].float().norm(dim=-1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-2)
    assert bool((a["g"] < 0).all()) and a["g"].dtype == torch.float32
    assert bool((a["beta"] > 0).all()) and bool((a["beta"] < 1).all())
    assert a["h0"].abs().min() >= 0 and a["h0"].abs().sum() > 0 and a["v"].abs().sum() > 0
    p = case.params
    assert a["cu_seqlens"].tolist()[-1] == a["q"].shape[1] and a["h0"].shape == (p["N"], p["HV"], p["K"], p["V"])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_tolerance_accepts_rounding_and_rejects_planted_bugs(spec):
    case = spec.test_cases()[0]
    inp = spec.make_inputs(case, "bf16", CPU, seed=5)
    ref = spec.reference(inp, case, "bf16")
    tol = spec.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    bugs = {
        "gate ignored": inp | {"g": torch.zeros_like(inp["g"])},
        "beta ignored": inp | {"beta": torch.ones_like(inp["beta"])},
        "initial state ignored": inp | {"h0": torch.zeros_like(inp["h0"])},
        "scale left out": inp | {"scale": 1.0},
        "state kept as [V, K]": inp | {"h0": inp["h0"].transpose(-1, -2).reshape(inp["h0"].shape)},
    }
    for name, bad in bugs.items():
        assert not compare(spec.reference(bad, case, "bf16"), ref, tol).ok, name
    out = spec.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:, :-1].copy_(ref[:, :-1]), out, ref, tol)  # last token unwritten
    assert not res.ok and "NaN" in res.reason


def test_chunk_and_recurrent_agree_on_one_token_sequences():
    """A chunked prefill of N one-token sequences is N decode steps: both references, same inputs."""
    case = Case("t", "test", {"T": 1, "N": 3, "H": 1, "HV": 2, "K": 8, "V": 6})
    inp = CHUNK_SPEC.make_inputs(case, "bf16", CPU, seed=9)
    rec_case = Case("t", "test", {"N": 3, "H": 1, "HV": 2, "K": 8, "V": 6})
    chunk_ref, rec_ref = CHUNK_SPEC.reference(inp, case, "bf16"), REC_SPEC.reference(inp, rec_case, "bf16")
    assert torch.allclose(chunk_ref["o"], rec_ref["o"])
    assert torch.allclose(chunk_ref["final_state"], rec_ref["final_state"])
    assert F.normalize(inp["k"].float(), dim=-1).shape == inp["k"].shape


def test_final_state_is_named_and_checked():
    for case in CHUNK_SPEC.test_cases():
        inp = CHUNK_SPEC.make_inputs(case, "bf16", CPU, seed=4)
        out, ref = CHUNK_SPEC.make_output(inp, case, "bf16"), CHUNK_SPEC.reference(inp, case, "bf16")
        tol = CHUNK_SPEC.tolerance("bf16")
        assert set(out) == set(ref) == set(tol) == {"o", "final_state"}
        assert out["final_state"].shape == inp["h0"].shape and out["final_state"].dtype == torch.float32
        _, finals = householder_reference(inp, states=True)
        assert torch.allclose(ref["final_state"].double(), finals, rtol=1e-4, atol=1e-5)
        assert compare(ref | {"final_state": ref["final_state"] * (1 + 2e-3)}, ref, tol).ok
        # a kernel that leaves the state as it found it, or drops the gate / beta / h0, must fail on final_state
        assert not compare(ref | {"final_state": inp["h0"].clone()}, ref, tol).ok
        for name, bad in {"g": torch.zeros_like(inp["g"]), "beta": torch.zeros_like(inp["beta"]),
                          "h0": torch.zeros_like(inp["h0"])}.items():
            wrong = CHUNK_SPEC.reference(inp | {name: bad}, case, "bf16")["final_state"]
            assert not compare(ref | {"final_state": wrong}, ref, tol).ok, name
        res = check_call(functools.partial(out["o"].copy_, ref["o"]), out, ref, tol)  # final state never written
        assert not res.ok and "NaN" in res.reason


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-next-80b-a3b")
    chunk = CHUNK_SPEC.cases(qwen)
    rec = REC_SPEC.cases(qwen)
    assert chunk and rec
    p = chunk[0].params
    assert (p["H"], p["HV"], p["K"], p["V"], p["N"]) == (16 // qwen.tp, 32 // qwen.tp, 128, 128, 1)
    assert {c.regime for c in chunk} == {"prefill"} and {c.regime for c in rec} == {"decode"}
    assert [c.params["T"] for c in chunk] == qwen.tokens("prefill")
    assert [c.params["N"] for c in rec] == qwen.tokens("decode")
    assert 0 < len(CHUNK_SPEC.cases(qwen, quick=True)) <= len(chunk)
    for other in ("kimi-linear-48b-a3b", "mamba2-2.7b", "qwen3-235b-a22b"):
        assert CHUNK_SPEC.cases(load_model(other)) == [] and REC_SPEC.cases(load_model(other)) == []


def test_check_cases_fit_every_provider():
    for spec in SPECS:
        (case,) = spec.check_cases()
        p = case.params
        assert p["K"] in (64, 128) and p["V"] in (64, 128) and p["HV"] % p["H"] == 0 and p["HV"] > p["H"]
    assert CHUNK_SPEC.check_cases()[0].params["T"] % 64  # a partial last chunk


def test_flop_and_byte_counts():
    c = Case("x", "decode", {"N": 1, "H": 1, "HV": 1, "K": 128, "V": 128})
    assert REC_SPEC.flops(c) == 7 * 128 * 128
    # the fp32 state read and write dominate decode traffic
    assert REC_SPEC.bytes(c, "bf16") > 2 * 128 * 128 * 4
    p = Case("x", "prefill", {"T": 64, "N": 1, "H": 1, "HV": 1, "K": 128, "V": 128})
    assert CHUNK_SPEC.flops(p) == 64 * (64 * (6 * 128 + 4 * 128) + 6 * 128 * 128)
    assert CHUNK_SPEC.bytes(p, "bf16") > 4 * 64 * 128 * 2
