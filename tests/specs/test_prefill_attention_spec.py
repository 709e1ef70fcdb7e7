"""The varlen causal prefill attention contract on tiny odd shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case, exact_fp32
from harness.specs.attention.prefill_attention import SPEC

CPU = torch.device("cpu")


def naive_prefill(inp) -> torch.Tensor:
    q, k, v = inp["q"].double(), inp["k"].double(), inp["v"].double()
    group = q.shape[1] // k.shape[1]
    out = torch.zeros_like(q)
    for s0, n in zip(inp["b_start_loc"].tolist(), inp["b_seq_len"].tolist()):
        for i in range(s0, s0 + n):
            for h in range(q.shape[1]):
                scores = [float(q[i, h] @ k[j, h // group]) * inp["sm_scale"] for j in range(s0, i + 1)]
                m = max(scores)
                w = [math.exp(s - m) for s in scores]
                out[i, h] = sum(wj * v[s0 + j, h // group] for j, wj in enumerate(w)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "fp16", CPU, seed=3)
        assert torch.allclose(SPEC.reference(inp, case, "fp16").double(), naive_prefill(inp), rtol=1e-4, atol=1e-5)


def test_inputs_packed_seeded_ragged():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["q"], b["q"]) and a["k"].abs().sum() > 0
    lens = a["b_seq_len"].tolist()
    assert len(set(lens)) > 1 and a["max_input_len"] == max(lens) == case.params["S"]
    assert a["b_start_loc"].tolist() == [sum(lens[:i]) for i in range(len(lens))]
    assert a["q"].shape[0] == sum(lens)


def test_tolerance_accepts_rounding_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    for dtype in SPEC.dtypes:
        inp = SPEC.make_inputs(case, dtype, CPU, seed=5)
        ref = SPEC.reference(inp, case, dtype)
        tol = SPEC.tolerance(dtype)
        assert compare(ref.to(inp["q"].dtype), ref, tol).ok
        # bug: sequences not separated (one long causal sequence over the packed tokens)
        n = inp["q"].shape[0]
        merged = inp | {"b_start_loc": torch.zeros(1, dtype=torch.int32),
                        "b_seq_len": torch.tensor([n], dtype=torch.int32)}
        assert not compare(SPEC.reference(merged, case, dtype), ref, tol).ok
        # bug: wrong GQA mapping (KV heads interleaved instead of grouped)
        hkv = inp["k"].shape[1]
        perm = torch.arange(hkv).roll(1)
        bad = inp | {"k": inp["k"][:, perm], "v": inp["v"][:, perm]}
        assert not compare(SPEC.reference(bad, case, dtype), ref, tol).ok


def test_cases_from_model_yaml():
    gemma = load_model("gemma3-27b")
    cases = SPEC.cases(gemma)
    assert [c.params["B"] * c.params["S"] for c in cases] == gemma.tokens("prefill")
    assert all(c.params["S"] <= 8192 for c in cases)
    assert cases[0].params["Hq"] == 32 and cases[0].params["Hkv"] == 16
    assert SPEC.cases(load_model("kimi-k2")) == []


def test_flop_and_byte_counts():
    c = Case("x", "prefill", {"B": 2, "S": 4, "Hq": 2, "Hkv": 1, "D": 8, "ragged": 0})
    assert SPEC.flops(c) == 4.0 * 2 * 10 * 2 * 8  # 10 causal pairs per sequence of 4
    assert SPEC.bytes(c, "bf16") == 8 * 8 * 2 * (2 * 2 + 2 * 1)


def test_exact_fp32_restores_tf32_flags_even_on_error():
    import pytest
    import torch


    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with pytest.raises(RuntimeError), exact_fp32():
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        raise RuntimeError("reference failed")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
