"""The mamba2_state_update contract: the shared checks of test_mamba2_ssd_spec.py on the decode step's `y` output,
plus its own loop reference (looped_ssu), its named state output and cases."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.linear.mamba2_state_update import SPEC
from tests.specs.test_gated_delta_rule_recurrent_spec import OneOutput
from tests.specs.test_mamba2_ssd_spec import looped_ssu
from tests.specs.test_mamba2_ssd_spec import test_inputs_are_seeded_and_in_domain as _seeded
from tests.specs.test_mamba2_ssd_spec import test_tolerances_accept_rounding_and_reject_planted_bugs as _tolerance

CPU = torch.device("cpu")


@pytest.mark.parametrize("check", [_seeded, _tolerance], ids=lambda f: f.__name__)
def test_shared_checks(check):
    check(OneOutput(SPEC, "y"))


def test_reference_matches_loops():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=11)
        assert torch.allclose(SPEC.reference(inp, case, "bf16")["y"].double(), looped_ssu(inp), rtol=1e-4, atol=1e-5)


def test_state_is_the_model_dtype_and_cases_are_decode():
    inp = SPEC.make_inputs(SPEC.check_cases()[0], "bf16", CPU, seed=0)
    assert inp["state"].dtype == torch.bfloat16 and inp["state"].shape == (5, 8, 64, 128)
    assert {c.regime for c in SPEC.cases(load_model("mamba2-2.7b"))} == {"decode"}


def test_state_output_is_named_and_checked():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    out, ref, tol = SPEC.make_output(inp, case, "bf16"), SPEC.reference(inp, case, "bf16"), SPEC.tolerance("bf16")
    assert set(out) == set(ref) == set(tol) == {"y", "state"}
    assert out["state"].shape == inp["state"].shape and out["state"].dtype == inp["state"].dtype
    assert compare({"y": ref["y"], "state": ref["state"].to(torch.bfloat16)}, ref, tol).ok
    # a kernel that never writes the new state back (returns the old one) must fail
    assert not compare({"y": ref["y"], "state": inp["state"]}, ref, tol).ok
