"""The token log-prob contract: reference vs a per-row logsumexp, token layout, planted bugs."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.token_logprobs import SPEC

CPU = torch.device("cpu")


def test_reference_matches_scalar_logsumexp():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp32")
    for b in range(case.params["B"]):
        row = inp["logits"][b].double().tolist()
        m = max(row)
        lse = m + math.log(sum(math.exp(x - m) for x in row))
        for j, tok in enumerate(inp["token_ids"][b].tolist()):
            assert abs(float(ref[b, j]) - (row[tok] - lse)) < 1e-9


def test_ids_layout_and_tolerance():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=2)
    ids = inp["token_ids"]
    assert ids.dtype == torch.int64 and ids.shape == (37, 21)
    assert torch.equal(ids[:, 1], inp["logits"].argmax(1))
    ref = SPEC.reference(inp, case, "fp32")
    tol = SPEC.tolerance("fp32")
    assert compare(ref.float(), ref, tol).ok
    # log-softmax without the max shift is fine mathematically; a plain gather of logits is not
    assert not compare(torch.gather(inp["logits"], 1, ids), ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("gemma3-27b"))
    assert cases and cases[0].params["K"] == 21 and cases[0].params["V"] == 262208
