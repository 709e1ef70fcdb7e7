"""The chunked-prefill + paged-decode contract (vLLM legacy paged layout) on tiny odd shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.chunked_prefill_paged_decode import (
    MIXED_DECODES,
    SPEC,
    TABLE_SLACK,
    kv_pack,
    lengths,
)
from harness.specs.attention.paged_decode_attention import PAGE_SIZE

CPU = torch.device("cpu")


def legacy_token(inp, b: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token j of sequence b read element by element from [blocks, Hkv, D/x, page, x] / [blocks, Hkv, D, page]."""
    kc, vc = inp["key_cache"], inp["value_cache"]
    blk, off = int(inp["block_table"][b, j // PAGE_SIZE]), j % PAGE_SIZE
    hkv, d, x = kc.shape[1], vc.shape[2], kc.shape[4]
    k = torch.tensor([[float(kc[blk, h, e // x, off, e % x]) for e in range(d)] for h in range(hkv)],
                     dtype=torch.float64)
    v = torch.tensor([[float(vc[blk, h, e, off]) for e in range(d)] for h in range(hkv)], dtype=torch.float64)
    return k, v


def naive(inp) -> torch.Tensor:
    q = inp["q"].double()
    cu, lens = inp["cu_seqlens_q"].tolist(), inp["seq_lens"].tolist()
    group = q.shape[1] // inp["key_cache"].shape[1]
    out = torch.zeros(q.shape, dtype=torch.float64)
    for b, n in enumerate(lens):
        toks = [legacy_token(inp, b, j) for j in range(n)]
        q_len = cu[b + 1] - cu[b]
        for i in range(q_len):
            visible = n - q_len + i + 1
            for h in range(q.shape[1]):
                s = [float(q[cu[b] + i, h] @ toks[j][0][h // group]) * inp["sm_scale"] for j in range(visible)]
                m = max(s)
                w = [math.exp(x - m) for x in s]
                out[cu[b] + i, h] = sum(wi * toks[j][1][h // group] for j, wi in enumerate(w)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        assert torch.allclose(SPEC.reference(inp, case, "bf16").double(), naive(inp), rtol=1e-4, atol=1e-5)


def test_packed_new_tokens_match_the_cache():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    cu, lens = inp["cu_seqlens_q"].tolist(), inp["seq_lens"].tolist()
    for b, n in enumerate(lens):
        q_len = cu[b + 1] - cu[b]
        for i in range(q_len):
            k, v = legacy_token(inp, b, n - q_len + i)
            assert torch.equal(inp["key"][cu[b] + i].double(), k) and torch.equal(inp["value"][cu[b] + i].double(), v)


def test_inputs_layout_and_batch_mix():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["key_cache"], b["key_cache"]) and a["q"].abs().sum() > 0
    x = kv_pack(torch.bfloat16)
    assert x == 8 and kv_pack(torch.float32) == 4
    assert a["key_cache"].shape[1:] == (2, 128 // x, PAGE_SIZE, x) and a["value_cache"].shape[1:] == (2, 128, PAGE_SIZE)
    q_lens = (a["cu_seqlens_q"][1:] - a["cu_seqlens_q"][:-1]).tolist()
    assert q_lens == [1, 1, 1, 37, 36] and a["max_seqlen_q"] == 37
    assert a["seq_lens"].tolist()[3:] == [187, 36 + 150 - 7]
    assert a["max_seqlen_k"] == int(a["seq_lens"].max()) == 301
    nb = math.ceil(301 / PAGE_SIZE)
    assert a["block_table"].shape == (5, nb + TABLE_SLACK)
    used = torch.cat([a["block_table"][i, :math.ceil(n / PAGE_SIZE)] for i, n in enumerate(a["seq_lens"].tolist())])
    assert used.unique().numel() == used.numel()  # no block shared between sequences


def test_tolerance_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # bug: the prefill chunks ignore their cached context
    q_lens = (inp["cu_seqlens_q"][1:] - inp["cu_seqlens_q"][:-1]).to(torch.int32)
    no_ctx = torch.where(q_lens > 1, q_lens, inp["seq_lens"])
    assert not compare(SPEC.reference(inp | {"seq_lens": no_ctx}, case, "bf16"), ref, tol).ok
    # bug: the decodes read each other's block-table rows
    table = inp["block_table"].clone()
    table[:3] = inp["block_table"][[1, 2, 0]]
    assert not compare(SPEC.reference(inp | {"block_table": table}, case, "bf16"), ref, tol).ok
    # bug: the value cache read as if it were in the key cache's layout
    vc = inp["value_cache"]
    scrambled = vc.reshape(vc.shape[0], vc.shape[1], -1, PAGE_SIZE).transpose(2, 3).reshape(vc.shape)
    assert not compare(SPEC.reference(inp | {"value_cache": scrambled}, case, "bf16"), ref, tol).ok


def test_cases_from_model_yaml():
    scout = load_model("llama4-scout")
    cases = SPEC.cases(scout)
    dec = [c for c in cases if c.regime == "decode"]
    pre = [c for c in cases if c.regime == "prefill"]
    assert dec and all(c.params["Bp"] == 0 and c.params["Bd"] * c.params["L"] <= 1 << 22 for c in dec)
    assert [c.params["Bp"] * c.params["Q"] for c in pre] == scout.tokens("prefill")
    assert all(c.params["Bd"] == MIXED_DECODES and c.params["L"] == 8192 and c.params["C"] == c.params["Q"]
               for c in pre)
    assert SPEC.cases(load_model("mamba2-2.7b")) == [] and SPEC.cases(load_model("deepseek-v3")) == []


def test_flop_and_byte_counts():
    case = Case("t", "test", {"Bd": 1, "L": 10, "Bp": 1, "Q": 4, "C": 6, "Hq": 2, "Hkv": 1, "D": 8, "ragged": 0})
    assert lengths(case.params) == ([1, 4], [10, 10])
    pairs = 10 + (4 * 6 + 4 * 5 / 2)
    assert SPEC.flops(case) == 4.0 * pairs * 2 * 8
    assert SPEC.bytes(case, "bf16") == 2.0 * 20 * 1 * 8 * 2 + 2.0 * 5 * 2 * 8 * 2
