"""The paged decode attention contract on tiny odd shapes: paged layout, reference, tolerance, counts."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention._common import MAX_DECODE_KV_TOKENS
from harness.specs.attention.paged_decode_attention import PAGE_SIZE, SPEC, decode_seq_lens

CPU = torch.device("cpu")


def naive_decode(inp) -> torch.Tensor:
    """Token by token through the block table, one head at a time, fp64 scalar softmax."""
    q, kc, vc, table, lens = inp["q"], inp["k_cache"], inp["v_cache"], inp["block_table"], inp["seq_lens"]
    b_n, hq, d = q.shape
    group = hq // kc.shape[2]
    out = torch.zeros(b_n, hq, d, dtype=torch.float64)
    for b in range(b_n):
        n = int(lens[b])
        for h in range(hq):
            scores, values = [], []
            for j in range(n):
                blk, off = int(table[b, j // PAGE_SIZE]), j % PAGE_SIZE
                scores.append(float(q[b, h].double() @ kc[blk, off, h // group].double()) * inp["sm_scale"])
                values.append(vc[blk, off, h // group].double())
            m = max(scores)
            w = [math.exp(s - m) for s in scores]
            out[b, h] = sum(wi * vi for wi, vi in zip(w, values)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.allclose(ref.double(), naive_decode(inp), rtol=1e-4, atol=1e-5)


def test_inputs_paged_seeded_and_ragged():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    c = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    assert torch.equal(a["k_cache"], b["k_cache"]) and not torch.equal(a["q"], c["q"])
    assert a["q"].abs().sum() > 0 and a["v_cache"].abs().sum() > 0
    lens = a["seq_lens"].tolist()
    assert lens[0] == case.params["L"] and len(set(lens)) > 1 and min(lens) >= 3 * case.params["L"] // 4
    table = a["block_table"]
    assert table.dtype == torch.int32 and a["seq_lens"].dtype == torch.int32
    used = torch.cat([table[i, :math.ceil(n / PAGE_SIZE)] for i, n in enumerate(lens)])
    assert len(set(used.tolist())) == used.numel()  # no block shared between sequences
    assert used.tolist() != sorted(used.tolist())  # random order: a kernel ignoring the table fails


def test_tolerance_accepts_rounding_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # bug 1: the block table ignored (pages read in storage order)
    n_blocks = inp["block_table"].shape[1]
    identity = torch.arange(inp["block_table"].numel(), dtype=torch.int32).view(-1, n_blocks)
    identity = identity % inp["k_cache"].shape[0]
    assert not compare(SPEC.reference(inp | {"block_table": identity}, case, "bf16"), ref, tol).ok
    # bug 2: one token short per sequence
    short = inp | {"seq_lens": inp["seq_lens"] - 1}
    assert not compare(SPEC.reference(short, case, "bf16"), ref, tol).ok
    # bug 3: missing softmax scale
    assert not compare(SPEC.reference(inp | {"sm_scale": 1.0}, case, "bf16"), ref, tol).ok


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-235b-a22b")
    cases = SPEC.cases(qwen)
    assert cases and all(c.regime == "decode" for c in cases)
    p = cases[0].params
    assert (p["Hq"], p["Hkv"], p["D"]) == (8, 1, 128)
    assert all(c.params["B"] * c.params["L"] <= MAX_DECODE_KV_TOKENS for c in cases)
    assert 0 < len(SPEC.cases(qwen, quick=True)) < len(cases)
    assert SPEC.cases(load_model("deepseek-v3")) == []  # MLA: no GQA section
    assert SPEC.cases(load_model("gemma3-27b"))[0].params["Hkv"] == 16


def test_flop_and_byte_counts():
    c = Case("x", "decode", {"B": 2, "L": 1024, "Hq": 8, "Hkv": 1, "D": 128})
    tokens = sum(decode_seq_lens(2, 1024))
    assert SPEC.flops(c) == 4 * tokens * 8 * 128
    assert SPEC.bytes(c, "bf16") == 2 * tokens * 128 * 2 + 2 * 2 * 8 * 128 * 2
