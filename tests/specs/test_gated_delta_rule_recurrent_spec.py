"""The gated_delta_rule_recurrent contract: the checks of test_gated_delta_rule_chunk_spec.py, on the decode spec."""

from __future__ import annotations

import pytest
import torch

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


@pytest.mark.parametrize("check", [_reference, _seeded, _tolerance], ids=lambda f: f.__name__)
def test_recurrent_spec(check):
    check(SPEC)


def test_one_token_per_sequence():
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", torch.device("cpu"), seed=0)
    assert inp["cu_seqlens"].tolist() == list(range(6)) and inp["q"].shape[1] == 5
