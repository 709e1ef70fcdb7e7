"""The NSA selected-block attention contract on tiny odd shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.sparse.nsa_selection_attention import SPEC, keys_per_token, selection_mask

CPU = torch.device("cpu")


def naive_selection(inp, causal: bool = True) -> torch.Tensor:
    """Token by token: gather the keys of the selected blocks (at or before the token unless causal=False)."""
    q, k, v, idx = inp["q"].double(), inp["k"].double(), inp["v"].double(), inp["block_indices"]
    bs, scale = inp["block_size"], inp["scale"]
    b, t, hq, _ = q.shape
    grp = hq // k.shape[2]
    out = torch.zeros_like(q)
    for bi in range(b):
        for i in range(t):
            for h in range(hq):
                blocks = [int(x) for x in idx[bi, i, h // grp] if x >= 0]
                keys = [j for c in blocks for j in range(c * bs, min(t, (c + 1) * bs)) if j <= i or not causal]
                s = [float(q[bi, i, h] @ k[bi, j, h // grp]) * scale for j in keys]
                m = max(s)
                w = [math.exp(x - m) for x in s]
                out[bi, i, h] = sum(wj * v[bi, j, h // grp] for j, wj in zip(keys, w)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16").double()
        assert torch.allclose(ref, naive_selection(inp), rtol=1e-4, atol=1e-5)


def test_indices_valid_sorted_distinct_own_block_first_seeded():
    for case in [*SPEC.test_cases(), *SPEC.check_cases()]:
        p = case.params
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        again = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        assert torch.equal(inp["q"], again["q"]) and torch.equal(inp["block_indices"], again["block_indices"])
        assert inp["q"].abs().sum() > 0 and inp["k"].abs().sum() > 0
        idx = inp["block_indices"]
        assert idx.dtype == torch.int32 and idx.shape == (p["B"], p["T"], p["Hkv"], p["S"])
        for bi in range(p["B"]):
            for t in range(p["T"]):
                own = t // p["BS"]
                for h in range(p["Hkv"]):
                    row = idx[bi, t, h].tolist()
                    n = min(p["S"], own + 1)
                    valid, pad = row[:n], row[n:]
                    assert own in valid and all(0 <= c <= own for c in valid), (t, row)
                    assert valid == sorted(set(valid)) and all(c == -1 for c in pad), (t, row)


def test_selection_is_random_not_just_the_latest_blocks():
    case = SPEC.check_cases()[0]
    idx = SPEC.make_inputs(case, "bf16", CPU, seed=2)["block_indices"]
    last = idx[:, -1]  # the last token sees all 10 blocks and keeps 5
    assert len({tuple(r) for r in last.reshape(-1, last.shape[-1]).tolist()}) > 1


def test_tolerance_accepts_rounding_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # bug: the own block read whole (no causal mask inside the block)
    assert not compare(naive_selection(inp, causal=False), ref, tol).ok
    # bug: selections of the wrong KV head (head-major vs token-major index layout mixed up)
    bad = inp | {"block_indices": inp["block_indices"].roll(1, dims=2)}
    assert not compare(SPEC.reference(bad, case, "bf16"), ref, tol).ok
    # bug: the selection ignored (dense causal attention); the case drops blocks, so this must differ
    assert case.params["T"] > case.params["BS"] * case.params["S"]
    nb = math.ceil(case.params["T"] / case.params["BS"])
    dense = inp | {"block_indices": torch.arange(nb, dtype=torch.int32).expand(*inp["block_indices"].shape[:3], nb)}
    assert not compare(SPEC.reference(dense, case, "bf16"), ref, tol).ok


def test_mask_counts_match_flop_formula():
    case = SPEC.test_cases()[0]
    p = case.params
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=7)
    for bi in range(p["B"]):
        for h in range(p["Hkv"]):
            counts = selection_mask(inp["block_indices"][bi, :, h], p["T"], p["BS"]).sum(dim=1).tolist()
            assert counts == [keys_per_token(t, p["BS"], p["S"]) for t in range(p["T"])]


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-235b-a22b")  # 64 q / 4 kv heads, group 16 (NSA's), tp 8 -> one group per GPU
    cases = SPEC.cases(qwen)
    assert [c.params["T"] for c in cases] == [t for t in qwen.tokens("prefill") if t <= 8192]
    assert all(c.params["B"] == 1 and c.params["BS"] == 64 and c.params["S"] == 16 for c in cases)
    assert (cases[0].params["Hq"], cases[0].params["Hkv"], cases[0].params["D"]) == (16, 1, 128)
    gemma = SPEC.cases(load_model("gemma3-27b"))[0].params  # tp 1: all 16 groups of 2
    assert (gemma["Hq"], gemma["Hkv"]) == (32, 16)
    assert SPEC.cases(load_model("deepseek-v3")) == []  # MLA: no KV-head groups
    assert [c.params["T"] for c in SPEC.cases(qwen, quick=True)] == [2048]


def test_flop_and_byte_counts():
    c = Case("x", "prefill", {"B": 2, "T": 10, "Hq": 2, "Hkv": 1, "D": 8, "BS": 4, "S": 2})
    # keys per token: block 0 -> 1..4, block 1 -> 4 + 1..4, block 2 (S=2: own + 1 earlier) -> 4 + 1..2
    pairs = (1 + 2 + 3 + 4) + (5 + 6 + 7 + 8) + (5 + 6)
    assert SPEC.flops(c) == 4.0 * 2 * pairs * 2 * 8
    assert SPEC.bytes(c, "bf16") == 20 * 8 * 2 * (2 * 2 + 2 * 1) + 20 * 1 * 2 * 4
