"""The causal_conv1d (varlen prefill) contract on tiny odd shapes; test_causal_conv1d_update_spec.py runs the
shared checks on the decode update."""

from __future__ import annotations

import math

import pytest
import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.linear.causal_conv1d import SPEC as FWD
from harness.specs.linear.causal_conv1d_update import SPEC as UPD

CPU = torch.device("cpu")


class OneOutput:
    """A spec seen through one of its named outputs (the shared checks compare a single tensor)."""

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


def looped_conv(inp):
    """float64, token by token: y[t] = silu(b + sum_j w[:, j] x[t - (W-1) + j]), zeros before a sequence."""
    x, w, b = inp["x"].double(), inp["weight"].double(), inp["bias"].double()
    width = w.shape[1]
    out = torch.zeros_like(x)
    bounds = inp["query_start_loc"].tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        for t in range(s, e):
            acc = b.clone()
            for j in range(width):
                src = t - (width - 1) + j
                if src >= s:
                    acc += w[:, j] * x[src]
            out[t] = acc * torch.sigmoid(acc)
    return out


def test_fwd_reference_matches_loops():
    for case in FWD.test_cases():
        inp = FWD.make_inputs(case, "bf16", CPU, seed=3)
        ref = FWD.reference(inp, case, "bf16")["y"]
        assert ref.shape == FWD.make_output(inp, case, "bf16")["y"].shape
        assert torch.allclose(ref.double(), looped_conv(inp), rtol=1e-5, atol=1e-6)


def test_update_is_the_last_token_of_a_prefill():
    """Decode on a state holding the previous W-1 inputs == the prefill output at that token."""
    case = Case("t", "test", {"batch": 1, "T": 6, "dim": 5, "W": 4})
    inp = FWD.make_inputs(case, "bf16", CPU, seed=4)
    ref = FWD.reference(inp, case, "bf16")["y"]
    x = inp["x"]
    upd = {"x": x[-1:], "conv_state": x[-4:-1].t()[None].contiguous(), "weight": inp["weight"], "bias": inp["bias"]}
    got = UPD.reference(upd, Case("t", "test", {"batch": 1, "dim": 5, "W": 4}), "bf16")
    assert torch.allclose(got["y"], ref[-1:], atol=1e-6)
    # the prefill's conv state is the window the next decode step reads: the update's state = the last W - 1 inputs
    assert torch.equal(got["conv_state"][0].to(x.dtype), x[-3:].t())
    assert torch.equal(FWD.reference(inp, case, "bf16")["conv_state"][0].to(x.dtype), x[-3:].t())


def test_fwd_conv_state_zero_pads_short_sequences():
    case = Case("t", "test", {"batch": 2, "T": 1, "dim": 3, "W": 4})  # one token, window W - 1 = 3
    inp = FWD.make_inputs(case, "bf16", CPU, seed=7)
    st = FWD.reference(inp, case, "bf16")["conv_state"]
    assert st.shape == (2, 3, 3) and torch.equal(st[:, :, :2], torch.zeros(2, 3, 2))
    assert torch.equal(st[:, :, 2], inp["x"].float())


@pytest.mark.parametrize("spec", [FWD], ids=lambda s: s.id)
def test_inputs_are_seeded_and_in_domain(spec):
    case = spec.test_cases()[0]
    a = spec.make_inputs(case, "bf16", CPU, seed=1)
    b = spec.make_inputs(case, "bf16", CPU, seed=1)
    c = spec.make_inputs(case, "bf16", CPU, seed=2)
    assert torch.equal(a["x"], b["x"]) and not torch.equal(a["x"], c["x"])
    bound = case.params["W"] ** -0.5
    assert float(a["weight"].float().abs().max()) <= bound * 1.01 and a["weight"].abs().sum() > 0
    assert a["bias"].abs().sum() > 0


@pytest.mark.parametrize("spec", [OneOutput(FWD, "y")], ids=lambda s: s.id)
def test_tolerances_accept_rounding_and_reject_planted_bugs(spec):
    case = spec.test_cases()[0]
    inp = spec.make_inputs(case, "bf16", CPU, seed=5)
    ref = spec.reference(inp, case, "bf16")
    tol = spec.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    bugs = {
        "taps reversed": inp | {"weight": inp["weight"].flip(1)},
        "bias dropped": inp | {"bias": torch.zeros_like(inp["bias"])},
    }
    for name, bad in bugs.items():
        assert not compare(spec.reference(bad, case, "bf16"), ref, tol).ok, (spec.id, name)
    out = spec.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:-1].copy_(ref[:-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_prefill_does_not_leak_across_sequences():
    case = FWD.test_cases()[0]
    inp = FWD.make_inputs(case, "bf16", CPU, seed=6)
    one_seq = inp | {"query_start_loc": inp["query_start_loc"][[0, -1]]}
    assert not compare(FWD.reference(one_seq, case, "bf16")["y"], FWD.reference(inp, case, "bf16")["y"],
                       FWD.tolerance("bf16")["y"]).ok


def test_cases_from_model_yaml():
    mamba = load_model("mamba2-2.7b")
    assert FWD.cases(mamba)[0].params == {"batch": 1, "T": mamba.tokens("prefill")[0], "dim": 5120 + 256, "W": 4}
    qwen = load_model("qwen3-next-80b-a3b")
    assert UPD.cases(qwen)[0].params["dim"] == (2 * 16 * 128 + 32 * 128) // 4
    kimi = load_model("kimi-linear-48b-a3b")
    assert FWD.cases(kimi)[0].params["dim"] == 32 * 128 // 2
    assert FWD.cases(load_model("deepseek-v3")) == [] and UPD.cases(load_model("llama4-scout")) == []
    assert {c.regime for c in UPD.cases(mamba)} == {"decode"}


def test_check_cases_and_counts():
    (c,) = FWD.check_cases()
    assert c.params["T"] % 8 and c.params["dim"] % 256
    d = Case("x", "decode", {"batch": 2, "dim": 8, "W": 4})
    assert UPD.flops(d) == 2 * 8 * 12
    assert UPD.bytes(d, "bf16") == 2 * 2 * 8 * 2 + 8 * 5 * 2 + 2 * 2 * 8 * 3 * 2
    p = Case("x", "prefill", {"batch": 1, "T": 16, "dim": 8, "W": 4})
    assert FWD.bytes(p, "bf16") == 2 * 16 * 8 * 2 + 8 * 5 * 2 + 8 * 3 * 2
    assert math.isclose(FWD.flops(p), 16 * 8 * 12)
