"""The EP gather contract: reference vs a slot loop, the permutation, planted remote-slot bug."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.moe.ep_gather import SPEC

CPU = torch.device("cpu")


def loop(inp, include_remote: bool = False) -> torch.Tensor:
    t, k = inp["topk_ids"].shape
    out = torch.zeros(t, inp["a"].shape[1], dtype=torch.float64)
    for i in range(t):
        for j in range(k):
            if include_remote or int(inp["expert_map"][int(inp["topk_ids"][i, j])]) >= 0:
                out[i] += float(inp["topk_weights"][i, j]) * inp["a"][int(inp["inv_perm"][i, j])].double()
    return out


def test_reference_matches_loop_and_rows_are_expert_sorted():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        assert torch.allclose(SPEC.reference(inp, case, "bf16").double(), loop(inp), rtol=1e-5, atol=1e-5)
        inv = inp["inv_perm"].flatten().long()
        assert sorted(inv.tolist()) == list(range(inv.numel()))
        experts_by_row = torch.empty_like(inv)
        experts_by_row[inv] = inp["topk_ids"].flatten().long()
        assert torch.all(experts_by_row[1:] >= experts_by_row[:-1])


def test_tolerance_rejects_reducing_remote_slots():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.bfloat16(), ref, tol).ok
    assert not compare(loop(inp, include_remote=True).float(), ref, tol).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)[0].params == {"T": 1, "E": 128, "top_k": 8,
                                                                               "H": 4096}
