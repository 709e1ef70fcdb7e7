"""Attention-state merge contracts (merge_attn_states, merge_states, merge_state_in_place) on tiny odd shapes."""

from __future__ import annotations

import math

import pytest
import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.merge_attn_states import SPEC as MERGE2
from harness.specs.attention.merge_state_in_place import SPEC as IN_PLACE
from harness.specs.attention.merge_states import SPEC as MERGE_N

CPU = torch.device("cpu")


def naive_merge(vs: list[torch.Tensor], lses: list[torch.Tensor]) -> torch.Tensor:
    """Scalar loops over (t, h): out = sum_i e^{s_i} v_i / sum_i e^{s_i}, shifted by the max for range."""
    t_n, h_n, d = vs[0].shape
    out = torch.zeros(t_n, h_n, d, dtype=torch.float64)
    for t in range(t_n):
        for h in range(h_n):
            s = [float(lse[t, h]) for lse in lses]
            m = max(s)
            w = [math.exp(x - m) for x in s]
            for i, v in enumerate(vs):
                out[t, h] += w[i] / sum(w) * v[t, h].double()
    return out


def test_merge2_reference_matches_naive():
    for case in MERGE2.test_cases():
        inp = MERGE2.make_inputs(case, "bf16", CPU, seed=3)
        ref = MERGE2.reference(inp, case, "bf16")
        naive = naive_merge([inp["v_a"], inp["v_b"]], [inp["lse_a"], inp["lse_b"]])
        assert ref.shape == inp["v_a"].shape
        assert torch.allclose(ref.double(), naive, rtol=1e-5, atol=1e-6)


def test_merge_n_reference_matches_naive():
    for case in MERGE_N.test_cases():
        inp = MERGE_N.make_inputs(case, "fp16", CPU, seed=4)
        s = case.params["S"]
        naive = naive_merge([inp["v"][:, i] for i in range(s)], [inp["lse"][:, i] for i in range(s)])
        assert torch.allclose(MERGE_N.reference(inp, case, "fp16").double(), naive, rtol=1e-5, atol=1e-6)


def test_in_place_reference_matches_naive_and_keeps_masked_rows():
    for case in IN_PLACE.test_cases():
        inp = IN_PLACE.make_inputs(case, "bf16", CPU, seed=5)
        ref = IN_PLACE.reference(inp, case, "bf16").double()
        merged = naive_merge([inp["v"], inp["v_other"]], [inp["lse"], inp["lse_other"]])
        for t in range(case.params["T"]):
            want = merged[t] if bool(inp["mask"][t]) else inp["v"][t].double()
            assert torch.allclose(ref[t], want, rtol=1e-5, atol=1e-6)
    inp = IN_PLACE.make_inputs(Case("t", "test", {"T": 64, "H": 2, "D": 8}), "bf16", CPU, seed=1)
    assert 0 < int(inp["mask"].sum()) < 64  # both paths exercised


@pytest.mark.parametrize("spec", [MERGE2, MERGE_N, IN_PLACE], ids=lambda s: s.id)
def test_inputs_seeded_valid_nonzero(spec):
    case = spec.check_cases()[0]
    a = spec.make_inputs(case, "bf16", CPU, seed=1)
    b = spec.make_inputs(case, "bf16", CPU, seed=1)
    c = spec.make_inputs(case, "bf16", CPU, seed=2)
    for key, x in a.items():
        assert torch.equal(x, b[key])
        if x.is_floating_point():
            assert torch.isfinite(x).all() and x.abs().sum() > 0
            assert not torch.equal(x, c[key])
            if "lse" in key:
                assert x.dtype == torch.float32 and x.std() > 0.5  # LSEs differ by units: weights not ~1/2


@pytest.mark.parametrize("spec", [MERGE2, MERGE_N, IN_PLACE], ids=lambda s: s.id)
def test_tolerance_accepts_rounding_and_rejects_planted_bugs(spec):
    case = spec.check_cases()[0]
    for dtype in spec.dtypes:
        inp = spec.make_inputs(case, dtype, CPU, seed=7)
        ref = spec.reference(inp, case, dtype)
        tol = spec.tolerance(dtype)
        assert compare(ref.to(inp[next(iter(inp))].dtype), ref, tol).ok
        # planted bug: LSE read in the wrong base (FlashInfer's base 2 passed as natural log)
        bad = {k: (x / math.log(2.0) if "lse" in k else x) for k, x in inp.items()}
        assert not compare(spec.reference(bad, case, dtype), ref, tol).ok


def test_merge2_planted_bug_swapped_weights():
    case = MERGE2.check_cases()[0]
    inp = MERGE2.make_inputs(case, "bf16", CPU, seed=8)
    ref = MERGE2.reference(inp, case, "bf16")
    swapped = inp | {"lse_a": inp["lse_b"], "lse_b": inp["lse_a"]}
    assert not compare(MERGE2.reference(swapped, case, "bf16"), ref, MERGE2.tolerance("bf16")).ok


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-235b-a22b")
    cases = MERGE2.cases(qwen)
    assert cases and cases[0].params["H"] == 64 // qwen.tp and cases[0].params["D"] == 128
    assert {c.regime for c in cases} == {"decode", "prefill"}
    ds = MERGE_N.cases(load_model("deepseek-v3"), quick=True)  # MLA: per-GPU q heads x v_head_dim
    assert ds and ds[0].params["H"] == 16 and ds[0].params["D"] == 128 and ds[0].params["S"] == 4
    assert IN_PLACE.cases(load_model("mamba2-2.7b")) == []


def test_flop_and_byte_counts():
    c = Case("x", "decode", {"T": 4, "H": 8, "D": 128})
    assert MERGE2.bytes(c, "bf16") == 3 * 4 * 8 * 128 * 2 + 2 * 4 * 8 * 4
    assert MERGE2.flops(c) > 3 * 4 * 8 * 128
    cn = Case("x", "decode", {"T": 4, "H": 8, "D": 128, "S": 4})
    assert MERGE_N.bytes(cn, "fp16") == 5 * 4 * 8 * 128 * 2 + 4 * 4 * 8 * 4
    assert IN_PLACE.bytes(c, "bf16") > MERGE2.bytes(c, "bf16")
