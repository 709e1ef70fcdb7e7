"""The NSA compressed-branch attention contract on tiny odd shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.sparse.nsa_compressed_attention import SPEC, compressed_len, seq_lens

CPU = torch.device("cpu")


def naive_compressed(inp, shift: int = 0) -> torch.Tensor:
    """Token by token: compressed entry i is visible once its window [i*d, i*d + l) has ended (+ shift)."""
    q, k, v = inp["q"].double(), inp["k"].double(), inp["v"].double()
    l_, d, scale = inp["kernel_size"], inp["kernel_stride"], inp["scale"]
    grp = q.shape[1] // k.shape[1]
    out = torch.zeros_like(q)
    cq, ck = inp["cu_seqlens_q"].tolist(), inp["cu_seqlens_k"].tolist()
    for q0, q1, k0, k1 in zip(cq[:-1], cq[1:], ck[:-1], ck[1:]):
        for t in range(q1 - q0):
            keys = [i for i in range(k1 - k0) if i * d + l_ - 1 + shift <= t]
            if not keys:
                continue
            for h in range(q.shape[1]):
                s = [float(q[q0 + t, h] @ k[k0 + i, h // grp]) * scale for i in keys]
                m = max(s)
                w = [math.exp(x - m) for x in s]
                out[q0 + t, h] = sum(wi * v[k0 + i, h // grp] for i, wi in zip(keys, w)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16").double()
        assert torch.allclose(ref, naive_compressed(inp), rtol=1e-4, atol=1e-5)


def test_inputs_packed_ragged_seeded():
    for case in [*SPEC.test_cases(), *SPEC.check_cases()]:
        p = case.params
        a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        assert torch.equal(a["q"], b["q"]) and torch.equal(a["k"], b["k"]) and a["v"].abs().sum() > 0
        lens = seq_lens(p)
        clens = [compressed_len(n, p["l"], p["d"]) for n in lens]
        assert a["cu_seqlens_q"].tolist() == [sum(lens[:i]) for i in range(len(lens) + 1)]
        assert a["cu_seqlens_k"].tolist() == [sum(clens[:i]) for i in range(len(clens) + 1)]
        assert a["cu_seqlens_q"].dtype == a["cu_seqlens_k"].dtype == torch.int32
        assert a["max_seqlen_q"] == max(lens) == p["T"] and a["max_seqlen_k"] == max(clens)
        assert all(n >= p["l"] for n in lens)
        if p["ragged"]:
            assert len(set(lens)) > 1
    assert compressed_len(8192, 32, 16) == 511 and compressed_len(31, 32, 16) == 0


def test_tolerance_accepts_rounding_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # bug: entries visible one token early / one stride late
    assert not compare(naive_compressed(inp, shift=-1), ref, tol).ok
    assert not compare(naive_compressed(inp, shift=inp["kernel_stride"]), ref, tol).ok
    # bug: compressed entries read one off (e.g. a sequence's k offset taken from the token cu_seqlens)
    shifted = inp | {"k": inp["k"].roll(1, dims=0), "v": inp["v"].roll(1, dims=0)}
    assert not compare(SPEC.reference(shifted, case, "bf16"), ref, tol).ok
    # bug: wrong GQA mapping
    bad = inp | {"k": inp["k"].roll(1, dims=1), "v": inp["v"].roll(1, dims=1)}
    assert not compare(SPEC.reference(bad, case, "bf16"), ref, tol).ok
    # the first l - 1 tokens of each sequence see nothing: zero rows
    assert ref[: inp["kernel_size"] - 1].abs().max() == 0 and ref[inp["kernel_size"] - 1].abs().max() > 0


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-235b-a22b")
    cases = SPEC.cases(qwen)
    assert [c.params["T"] for c in cases] == [t for t in qwen.tokens("prefill") if t <= 8192]
    assert all((c.params["l"], c.params["d"], c.params["B"]) == (32, 16, 1) for c in cases)
    assert (cases[0].params["Hq"], cases[0].params["Hkv"], cases[0].params["D"]) == (16, 1, 128)
    assert SPEC.cases(load_model("kimi-k2")) == []


def test_flop_and_byte_counts():
    c = Case("x", "prefill", {"B": 1, "T": 12, "Hq": 2, "Hkv": 1, "D": 8, "l": 4, "d": 2, "ragged": 0})
    # Tc = (12 - 4) // 2 + 1 = 5 entries ending at 3, 5, 7, 9, 11: tokens 3..11 see 1,1,2,2,3,3,4,4,5
    pairs = 1 + 1 + 2 + 2 + 3 + 3 + 4 + 4 + 5
    assert SPEC.flops(c) == 4.0 * pairs * 2 * 8
    assert SPEC.bytes(c, "bf16") == (2.0 * 12 * 2 + 2.0 * 5 * 1) * 8 * 2
