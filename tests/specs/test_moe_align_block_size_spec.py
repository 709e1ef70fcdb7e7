"""The MoE alignment contract: a hand-checked layout, a pure-python emulation of SGLang's 4 stages, exactness."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.moe.moe_align_block_size import SPEC, split_output

CPU = torch.device("cpu")


def four_stage(ids: torch.Tensor, e: int, block: int, out: torch.Tensor, m: int, top_k: int) -> None:
    """SGLang's moe_align stages 1-4 in plain python (per-program counts, prefix, padded cumsum, scatter)."""
    flat = ids.flatten().tolist()
    numel = len(flat)
    tpt = math.ceil(numel / e)
    cnts = [[0] * e for _ in range(e + 1)]
    for pid in range(e):
        for i in range(pid * tpt, min((pid + 1) * tpt, numel)):
            cnts[pid + 1][flat[i]] += 1
    for col in range(e):
        for i in range(1, e + 1):
            cnts[i][col] += cnts[i - 1][col]
    cumsum = [0] * (e + 1)
    for i in range(1, e + 1):
        cumsum[i] = cumsum[i - 1] + math.ceil(cnts[e][i - 1] / block) * block
    s_out, e_out, n_out = split_output(out, m, top_k, e, block)
    s_out.fill_(numel)
    e_out.fill_(-1)
    n_out.fill_(cumsum[e])
    for pid in range(e):
        for i in range(cumsum[pid], cumsum[pid + 1], block):
            e_out[i // block] = pid
        for i in range(pid * tpt, min((pid + 1) * tpt, numel)):
            x = flat[i]
            s_out[cnts[pid][x] + cumsum[x]] = i
            cnts[pid][x] += 1


def test_reference_matches_sglang_stage_emulation():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "int32", CPU, seed=1)
        p = case.params
        out = SPEC.make_output(inp, case, "int32")
        four_stage(inp["topk_ids"], p["E"], p["B"], out, p["M"], p["top_k"])
        assert compare(out, SPEC.reference(inp, case, "int32"), SPEC.tolerance("int32")).ok


def test_hand_checked_layout():
    case = Case("t", "test", {"M": 3, "E": 5, "top_k": 2, "B": 2})
    inp = {"topk_ids": torch.tensor([[3, 1], [3, 0], [1, 3]], dtype=torch.int32)}
    ref = SPEC.reference(inp, case, "int32")
    s, e, n = split_output(ref, 3, 2, 5, 2)
    assert s.tolist()[:8] == [3, 6, 1, 4, 0, 2, 5, 6] and set(s.tolist()[8:]) == {6}
    assert e.tolist()[:4] == [0, 1, 3, 3] and set(e.tolist()[4:]) == {-1}
    assert n.tolist() == [8]


def test_exactness_rejects_a_swap_within_an_expert():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=2)
    ref = SPEC.reference(inp, case, "int32")
    bad = ref.clone()
    bad[[0, 1]] = bad[[1, 0]]
    assert not compare(bad, ref, SPEC.tolerance("int32")).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("deepseek-v3"), quick=True)
    assert cases and all(c.params["E"] == 256 and c.params["top_k"] == 8 for c in cases)
