"""The mamba2_ssd contract on tiny odd shapes (plus the SSU cross-check); test_mamba2_state_update_spec.py runs the
shared checks on the selective state update."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.linear.mamba2_ssd import SPEC as SSD
from harness.specs.linear.mamba2_state_update import SPEC as SSU

CPU = torch.device("cpu")


def quadratic_ssd(inp):
    """float64 "attention" (dual) form of SSD, independent of the recurrence:
    y_t = sum_{s <= t} (C_t . B_s) exp(sum_{s < r <= t} d_r A) d_s x_s + D x_t."""
    x = inp["x"].double()
    b, t, h, _ = x.shape
    rep = h // inp["B"].shape[2]
    bm = inp["B"].double().repeat_interleave(rep, dim=2)
    cm = inp["C"].double().repeat_interleave(rep, dim=2)
    d = F.softplus(inp["dt"].double() + inp["dt_bias"].double())  # [b, t, h]
    cum = torch.cumsum(d * inp["A"].double(), dim=1)  # [b, t, h]
    seg = cum[:, :, None, :] - cum[:, None, :, :]  # [b, t(target), s(source), h]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))[None, :, :, None]
    decay = torch.where(causal, torch.exp(seg.clamp(max=0)), torch.zeros((), dtype=torch.float64))
    scores = torch.einsum("bthn,bshn->btsh", cm, bm) * decay * d[:, None, :, :]
    return torch.einsum("btsh,bshp->bthp", scores, x) + inp["D"].double()[:, None] * x


def looped_ssu(inp):
    """float64, request by request and head by head."""
    x = inp["x"].double()
    out = torch.empty_like(x)
    bsz, h, _ = x.shape
    rep = h // inp["B"].shape[1]
    for b in range(bsz):
        for i in range(h):
            d = F.softplus(inp["dt"][b, i].double() + inp["dt_bias"][i].double())
            s = torch.exp(d * inp["A"][i].double()) * inp["state"][b, i].double()
            s = s + d * torch.outer(x[b, i], inp["B"][b, i // rep].double())
            out[b, i] = s @ inp["C"][b, i // rep].double() + inp["D"][i].double() * x[b, i]
    return out


def test_ssd_reference_matches_quadratic_form():
    for case in SSD.test_cases():
        inp = SSD.make_inputs(case, "bf16", CPU, seed=3)
        ref = SSD.reference(inp, case, "bf16")
        assert ref.shape == SSD.make_output(inp, case, "bf16").shape
        assert torch.allclose(ref.double(), quadratic_ssd(inp), rtol=1e-4, atol=1e-5)


def test_ssu_reference_matches_loops():
    for case in SSU.test_cases():
        inp = SSU.make_inputs(case, "bf16", CPU, seed=3)
        ref = SSU.reference(inp, case, "bf16")["y"]
        assert ref.shape == SSU.make_output(inp, case, "bf16")["y"].shape
        assert torch.allclose(ref.double(), looped_ssu(inp), rtol=1e-4, atol=1e-5)


def test_ssu_is_one_step_of_ssd():
    """A one-token SSD from a zero state equals the state update from a zero state."""
    c = Case("t", "test", {"batch": 2, "T": 1, "H": 4, "P": 3, "G": 2, "N": 5, "chunk": 4})
    inp = SSD.make_inputs(c, "bf16", CPU, seed=4)
    ssu_inp = {"state": torch.zeros(2, 4, 3, 5, dtype=torch.bfloat16), "x": inp["x"][:, 0], "dt": inp["dt"][:, 0],
               "A": inp["A"], "B": inp["B"][:, 0], "C": inp["C"][:, 0], "D": inp["D"], "dt_bias": inp["dt_bias"]}
    ssu_case = Case("t", "test", {"batch": 2, "H": 4, "P": 3, "G": 2, "N": 5})
    assert torch.allclose(SSD.reference(inp, c, "bf16")[:, 0], SSU.reference(ssu_inp, ssu_case, "bf16")["y"],
                          atol=1e-6)


@pytest.mark.parametrize("spec", [SSD], ids=lambda s: s.id)
def test_inputs_are_seeded_and_in_domain(spec):
    case = spec.test_cases()[0]
    a = spec.make_inputs(case, "bf16", CPU, seed=1)
    b = spec.make_inputs(case, "bf16", CPU, seed=1)
    c = spec.make_inputs(case, "bf16", CPU, seed=2)
    assert torch.equal(a["x"], b["x"]) and not torch.equal(a["x"], c["x"])
    assert bool((a["A"] < 0).all()) and a["A"].dtype == torch.float32
    d = F.softplus(a["dt"].float() + a["dt_bias"])
    assert bool((d > 0).all()) and float(d.max()) < 5
    for name in ("x", "B", "C"):
        assert a[name].abs().sum() > 0
    assert bool((a["D"] != 0).all())


@pytest.mark.parametrize("spec", [SSD], ids=lambda s: s.id)
def test_tolerances_accept_rounding_and_reject_planted_bugs(spec):
    case = spec.test_cases()[0]
    inp = spec.make_inputs(case, "bf16", CPU, seed=5)
    ref = spec.reference(inp, case, "bf16")
    tol = spec.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    bugs = {
        "skip term D dropped": inp | {"D": torch.zeros_like(inp["D"])},
        "dt_bias dropped": inp | {"dt_bias": torch.zeros_like(inp["dt_bias"])},
        "B and C swapped": inp | {"B": inp["C"], "C": inp["B"]},
        "decay halved": inp | {"A": inp["A"] * 0.5},
    }
    for name, bad in bugs.items():
        assert not compare(spec.reference(bad, case, "bf16"), ref, tol).ok, (spec.id, name)
    out = spec.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:-1].copy_(ref[:-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_cases_from_model_yaml():
    mamba = load_model("mamba2-2.7b")
    ssd, ssu = SSD.cases(mamba), SSU.cases(mamba)
    assert ssd and ssu
    p = ssd[0].params
    assert (p["H"], p["P"], p["G"], p["N"], p["chunk"], p["batch"]) == (80, 64, 1, 128, 256, 1)
    assert [c.params["T"] for c in ssd] == mamba.tokens("prefill")
    assert [c.params["batch"] for c in ssu] == mamba.tokens("decode")
    assert "chunk" not in ssu[0].params
    for other in ("qwen3-next-80b-a3b", "kimi-linear-48b-a3b", "deepseek-v3"):
        assert SSD.cases(load_model(other)) == [] and SSU.cases(load_model(other)) == []


def test_check_cases_and_counts():
    (c,) = SSD.check_cases()
    assert c.params["T"] % c.params["chunk"] and c.params["chunk"] & (c.params["chunk"] - 1) == 0
    (u,) = SSU.check_cases()
    assert u.params["H"] % u.params["G"] == 0
    d = Case("x", "decode", {"batch": 1, "H": 1, "P": 64, "G": 1, "N": 128})
    assert SSU.flops(d) == 5 * 64 * 128
    assert SSU.bytes(d, "bf16") > 2 * 64 * 128 * 2
    pre = Case("x", "prefill", {"batch": 1, "T": 256, "H": 1, "P": 64, "G": 1, "N": 128, "chunk": 256})
    assert SSD.flops(pre) == 256 * (2 * 256 * 128 + 4 * 64 * 128 + 2 * 256 * 64)
    assert SSD.bytes(pre, "bf16") >= 256 * 2 * (2 * 64 + 2 * 128)
