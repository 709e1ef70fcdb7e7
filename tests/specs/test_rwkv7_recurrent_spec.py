"""The rwkv7_recurrent contract: the shared checks of test_rwkv6_recurrent_spec.py (which holds the independent
naive form for each RWKV version) on the RWKV7 spec."""

from __future__ import annotations

import pytest

from harness.specs.linear.rwkv7_recurrent import SPEC
from tests.specs.test_rwkv6_recurrent_spec import test_inputs_are_seeded_and_in_domain as _seeded
from tests.specs.test_rwkv6_recurrent_spec import test_reference_matches_independent_form as _reference
from tests.specs.test_rwkv6_recurrent_spec import test_tolerance_rejects_planted_bugs as _tolerance


@pytest.mark.parametrize("check", [_reference, _seeded, _tolerance], ids=lambda f: f.__name__)
def test_shared_checks(check):
    check(SPEC)
