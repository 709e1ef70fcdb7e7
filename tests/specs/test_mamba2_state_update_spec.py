"""The mamba2_state_update contract: the shared checks of test_mamba2_ssd_spec.py on the decode step, plus its
own loop reference (looped_ssu) and cases."""

from __future__ import annotations

import pytest
import torch

from harness.shapes import load_model
from harness.specs.linear.mamba2_state_update import SPEC
from tests.specs.test_mamba2_ssd_spec import looped_ssu
from tests.specs.test_mamba2_ssd_spec import test_inputs_are_seeded_and_in_domain as _seeded
from tests.specs.test_mamba2_ssd_spec import test_tolerances_accept_rounding_and_reject_planted_bugs as _tolerance

CPU = torch.device("cpu")


@pytest.mark.parametrize("check", [_seeded, _tolerance], ids=lambda f: f.__name__)
def test_shared_checks(check):
    check(SPEC)


def test_reference_matches_loops():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=11)
        assert torch.allclose(SPEC.reference(inp, case, "bf16").double(), looped_ssu(inp), rtol=1e-4, atol=1e-5)


def test_state_is_the_model_dtype_and_cases_are_decode():
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=0)
    assert inp["state"].dtype == torch.bfloat16 and inp["state"].shape == (5, 8, 64, 128)
    assert {c.regime for c in SPEC.cases(load_model("mamba2-2.7b"))} == {"decode"}
