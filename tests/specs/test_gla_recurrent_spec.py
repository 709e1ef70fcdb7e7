"""The gla_recurrent contract: the shared checks of test_gla_chunk_spec.py on the decode spec's `o` output, plus its
named final_state output."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.specs.linear._common import gla_reference
from harness.specs.linear.gla_recurrent import SPEC
from tests.specs.test_gated_delta_rule_recurrent_spec import OneOutput
from tests.specs.test_gla_chunk_spec import test_inputs_are_seeded_and_in_domain as _seeded
from tests.specs.test_gla_chunk_spec import test_reference_matches_unrolled_form as _reference
from tests.specs.test_gla_chunk_spec import test_tolerance_rejects_planted_bugs as _tolerance

CPU = torch.device("cpu")


@pytest.mark.parametrize("check", [_reference, _seeded, _tolerance], ids=lambda f: f.__name__)
def test_shared_checks(check):
    check(OneOutput(SPEC, "o"))


def test_one_token_per_sequence():
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=0)
    assert inp["cu_seqlens"].tolist() == list(range(6)) and inp["q"].shape[1] == 5


def test_final_state_is_named_and_checked():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=4)
    ref, tol = SPEC.reference(inp, case, "bf16"), SPEC.tolerance("bf16")
    assert set(SPEC.make_output(inp, case, "bf16")) == set(ref) == set(tol) == {"o", "final_state"}
    o, _ = gla_reference(inp["q"], inp["k"], inp["v"], inp["gk"], inp["h0"], inp["cu_seqlens"], inp["scale"])
    assert torch.allclose(ref["o"], o)
    # one token: S = diag(exp(gk)) h0 + k v^T
    want = (torch.exp(inp["gk"][0].float())[..., None] * inp["h0"]
            + inp["k"][0].float()[..., None] * inp["v"][0].float()[:, :, None, :])
    assert torch.allclose(ref["final_state"], want, atol=1e-5)
    assert not compare(ref | {"final_state": inp["h0"].clone()}, ref, tol).ok
