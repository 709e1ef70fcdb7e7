"""The gated_delta_rule_recurrent contract: the checks of test_gated_delta_rule_chunk_spec.py on the decode spec's
`o` output, plus its named final_state output."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.specs.linear.gated_delta_rule_recurrent import SPEC
from tests.specs.test_gated_delta_rule_chunk_spec import (
    test_inputs_are_seeded_and_in_domain as _seeded,
)
from tests.specs.test_gated_delta_rule_chunk_spec import (
    test_reference_matches_product_form as _reference,
)
from tests.specs.test_gated_delta_rule_chunk_spec import (
    test_tolerance_accepts_rounding_and_rejects_planted_bugs as _tolerance,
)

CPU = torch.device("cpu")


class OneOutput:
    """The spec seen through one of its named outputs (the shared checks compare a single tensor)."""

    def __init__(self, spec, name: str) -> None:
        self._spec, self._name = spec, name

    def __getattr__(self, attr):
        return getattr(self._spec, attr)

    def make_output(self, *a):
        return self._spec.make_output(*a)[self._name]

    def reference(self, *a):
        return self._spec.reference(*a)[self._name]

    def tolerance(self, dtype):
        return self._spec.tolerance(dtype)[self._name]


@pytest.mark.parametrize("check", [_reference, _seeded, _tolerance], ids=lambda f: f.__name__)
def test_recurrent_spec(check):
    check(OneOutput(SPEC, "o"))


def test_one_token_per_sequence():
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=0)
    assert inp["cu_seqlens"].tolist() == list(range(6)) and inp["q"].shape[1] == 5


def test_final_state_is_named_and_checked():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=4)
    out, ref, tol = SPEC.make_output(inp, case, "bf16"), SPEC.reference(inp, case, "bf16"), SPEC.tolerance("bf16")
    assert set(out) == set(ref) == set(tol) == {"o", "final_state"}
    assert out["final_state"].shape == inp["h0"].shape and out["final_state"].dtype == torch.float32
    assert compare(ref, ref, tol).ok
    # a kernel that leaves the state as it found it (or skips the delta update) must fail on final_state
    stale = {"o": ref["o"], "final_state": inp["h0"].clone()}
    assert not compare(stale, ref, tol).ok
    no_beta = SPEC.reference(inp | {"beta": torch.zeros_like(inp["beta"])}, case, "bf16")
    assert not compare(ref | {"final_state": no_beta["final_state"]}, ref, tol).ok
