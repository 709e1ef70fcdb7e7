"""The MoE permute contract: reference vs a slot loop, src2dst is an expert-sorting permutation, planted bug fails."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.moe.moe_permute import SPEC

CPU = torch.device("cpu")


def loop(inp, k: int, identity: bool = False) -> torch.Tensor:
    x = inp["x"]
    out = torch.full((x.shape[0] * k, x.shape[1]), float("nan"))
    for s in range(x.shape[0] * k):
        dst = s if identity else int(inp["src2dst"][s])
        out[dst] = x[s // k].float()
    return out


def test_reference_matches_loop_and_rows_are_expert_sorted():
    tol = SPEC.tolerance("bf16")
    for case in SPEC.test_cases() + SPEC.check_cases():
        k = case.params["top_k"]
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.equal(ref, loop(inp, k))
        dst = inp["src2dst"].long()
        assert sorted(dst.tolist()) == list(range(dst.numel()))
        experts_by_row = torch.empty_like(dst)
        experts_by_row[dst] = inp["topk_ids"].flatten().long()
        assert torch.all(experts_by_row[1:] >= experts_by_row[:-1])
        if case.params["T"] > 1:
            assert not compare(loop(inp, k, identity=True), ref, tol).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)[0].params == {"T": 1, "E": 128, "top_k": 8,
                                                                               "H": 4096}
