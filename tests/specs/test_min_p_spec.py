"""The min-p contract: threshold vs a probability-space definition, FILTERED sentinel, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.min_p import FILTERED, SPEC

CPU = torch.device("cpu")


def test_reference_matches_probability_definition():
    """keep iff p(v) >= min_p * p(max), the definition min-p sampling is stated in."""
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp32")
    for b in range(case.params["B"]):
        mp = float(inp["min_p"][int(inp["mapping"][b])])
        prob = torch.softmax(inp["logits"][b].double(), 0)
        keep = prob >= mp * prob.max() if mp > 0 else torch.ones_like(prob, dtype=torch.bool)
        assert torch.equal(ref[b] != FILTERED, keep)
        assert torch.equal(ref[b][keep], inp["logits"][b][keep].double())


def test_tolerance_rejects_one_wrong_decision():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=2)
    ref = SPEC.reference(inp, case, "fp32")
    tol = SPEC.tolerance("fp32")
    assert compare(ref.float(), ref, tol).ok
    bad = ref.clone()
    idx = (bad == FILTERED).nonzero()[0]
    bad[idx[0], idx[1]] = inp["logits"][idx[0], idx[1]]
    assert not compare(bad.float(), ref, tol).ok


def test_cases_from_model():
    assert len(SPEC.cases(load_model("deepseek-v3"), quick=True)) == 3
