"""The zero-expert identity contract: reference vs a slot loop, planted bugs (normal experts counted) fail."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.moe.zero_experts_identity import SPEC

CPU = torch.device("cpu")


def loop(inp, e: int, all_experts: bool = False) -> torch.Tensor:
    ids, w, x = inp["topk_ids"], inp["topk_weights"], inp["hidden_states"]
    out = torch.zeros(x.shape, dtype=torch.float64)
    for t in range(ids.shape[0]):
        for j in range(ids.shape[1]):
            if all_experts or int(ids[t, j]) >= e:
                out[t] += float(w[t, j]) * x[t].double()
    return out


def test_reference_matches_loop_and_rejects_counting_normal_experts():
    tol = SPEC.tolerance("bf16")
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        ref = SPEC.reference(inp, case, "bf16")
        e = case.params["E"]
        assert torch.allclose(ref.double(), loop(inp, e), rtol=1e-5, atol=1e-6)
        assert compare(ref.bfloat16(), ref, tol).ok
        if (inp["topk_ids"] >= e).any() and (inp["topk_ids"] < e).any():
            assert not compare(loop(inp, e, all_experts=True).float(), ref, tol).ok
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=1)
    assert (inp["topk_ids"] >= 64).any()


def test_cases_and_invalid_width():
    assert SPEC.cases(load_model("qwen3-235b-a22b")) == []  # no zero experts in the current shape files
    assert SPEC.invalid_reason(Case("t", "test", {"T": 1, "E": 4, "Z": 2, "top_k": 2, "H": 300}), "bf16")
