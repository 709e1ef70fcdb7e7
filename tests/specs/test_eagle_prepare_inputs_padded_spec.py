"""The EAGLE inputs-padded contract: reference vs a per-request loop over the packed query layout."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.eagle_prepare_inputs_padded import SPEC

CPU = torch.device("cpu")


def loop(inp) -> list[int]:
    cu = inp["cu_num_draft_tokens"].tolist()
    qsl = inp["query_start_loc"].tolist()
    index, rejected = [], []
    for b in range(len(cu)):
        n = cu[b] - (cu[b - 1] if b else 0)
        r = n + 1 - int(inp["valid_count"][b]) if n > 0 else 0
        rejected.append(r)
        index.append(qsl[b + 1] - 1 - r)
    return index + rejected


def test_reference_matches_loop():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "int32", CPU, seed=2)
        assert SPEC.reference(inp, case, "int32").long().tolist() == loop(inp)


def test_layout_and_exactness():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=4)
    drafts = torch.diff(inp["cu_num_draft_tokens"].long(), prepend=torch.zeros(1, dtype=torch.long))
    assert set(drafts.tolist()) == {0, 3}
    assert torch.equal(torch.diff(inp["query_start_loc"].long()), drafts + 1)
    ref = SPEC.reference(inp, case, "int32")
    assert not compare(torch.zeros_like(ref), ref, SPEC.tolerance("int32")).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("deepseek-v3"), quick=True)
