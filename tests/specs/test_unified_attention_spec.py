"""The mixed-batch paged attention contract (unified_attention) on tiny odd shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.paged_decode_attention import PAGE_SIZE
from harness.specs.attention.unified_attention import SPEC, lengths

CPU = torch.device("cpu")


def naive_unified(inp) -> torch.Tensor:
    """Query token by query token through the block table; causal offset = context length."""
    q, kc, vc, table = inp["q"], inp["k_cache"], inp["v_cache"], inp["block_table"]
    cu, lens = inp["cu_seqlens_q"].tolist(), inp["seq_lens"].tolist()
    group = q.shape[1] // kc.shape[2]
    out = torch.zeros(q.shape, dtype=torch.float64)
    for b in range(len(lens)):
        q_len, n = cu[b + 1] - cu[b], lens[b]
        for i in range(q_len):
            visible = n - q_len + i + 1
            for h in range(q.shape[1]):
                ks = [kc[int(table[b, j // PAGE_SIZE]), j % PAGE_SIZE, h // group].double() for j in range(visible)]
                vs = [vc[int(table[b, j // PAGE_SIZE]), j % PAGE_SIZE, h // group].double() for j in range(visible)]
                s = [float(q[cu[b] + i, h].double() @ k) * inp["sm_scale"] for k in ks]
                m = max(s)
                w = [math.exp(x - m) for x in s]
                out[cu[b] + i, h] = sum(wi * vi for wi, vi in zip(w, vs)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        assert torch.allclose(SPEC.reference(inp, case, "bf16").double(), naive_unified(inp), rtol=1e-4, atol=1e-5)


def test_inputs_mixed_and_seeded():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    b = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    assert torch.equal(a["q"], b["q"]) and a["k_cache"].abs().sum() > 0
    q_lens = (a["cu_seqlens_q"][1:] - a["cu_seqlens_q"][:-1]).tolist()
    assert len(set(q_lens)) > 1 and a["max_seqlen_q"] == max(q_lens)
    assert all(q <= n for q, n in zip(q_lens, a["seq_lens"].tolist()))
    assert a["max_seqlen_k"] == int(a["seq_lens"].max())


def test_tolerance_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # bug: causal offset ignored (queries see only the first q_len keys' worth of a fresh prefill)
    q_lens = (inp["cu_seqlens_q"][1:] - inp["cu_seqlens_q"][:-1]).to(torch.int32)
    no_context = inp | {"seq_lens": q_lens}
    assert not compare(SPEC.reference(no_context, case, "bf16"), ref, tol).ok
    # bug: last new token's key missing (KV length one short, so the diagonal is lost)
    assert not compare(SPEC.reference(inp | {"seq_lens": inp["seq_lens"] - 1}, case, "bf16"), ref, tol).ok


def test_cases_from_model_yaml():
    scout = load_model("llama4-scout")
    cases = SPEC.cases(scout)
    assert {c.regime for c in cases} == {"decode", "prefill"}
    dec = [c for c in cases if c.regime == "decode"]
    assert all(c.params["Q"] == 1 for c in dec)
    pre = [c for c in cases if c.regime == "prefill"]
    assert [c.params["B"] * c.params["Q"] for c in pre] == scout.tokens("prefill")
    assert SPEC.cases(load_model("mamba2-2.7b")) == []


def test_flop_and_byte_counts():
    c = Case("x", "prefill", {"B": 1, "Q": 4, "L": 8, "Hq": 2, "Hkv": 1, "D": 8, "ragged": 0})
    q_lens, kv_lens = lengths(c.params)
    assert (q_lens, kv_lens) == ([4], [8])
    assert SPEC.flops(c) == 4.0 * (4 * 4 + 10) * 2 * 8  # 4 context keys each + 10 causal pairs
    assert SPEC.bytes(c, "bf16") == 2 * 8 * 1 * 8 * 2 + 2 * 4 * 2 * 8 * 2
