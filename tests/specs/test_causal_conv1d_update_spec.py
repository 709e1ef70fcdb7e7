"""The causal_conv1d_update contract: the shared checks of test_causal_conv1d_spec.py on the decode update, plus its
state shape and the prefill consistency check."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.specs.linear.causal_conv1d_update import SPEC
from tests.specs.test_causal_conv1d_spec import OneOutput
from tests.specs.test_causal_conv1d_spec import test_inputs_are_seeded_and_in_domain as _seeded
from tests.specs.test_causal_conv1d_spec import test_tolerances_accept_rounding_and_reject_planted_bugs as _tolerance

CPU = torch.device("cpu")


@pytest.mark.parametrize("check", [_seeded, _tolerance], ids=lambda f: f.__name__)
def test_shared_checks(check):
    check(OneOutput(SPEC, "y"))


def test_conv_state_shape_and_use():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert inp["conv_state"].shape == (3, 5, 3) and inp["conv_state"].abs().sum() > 0
    ref = SPEC.reference(inp, case, "bf16")["y"]
    tol = SPEC.tolerance("bf16")["y"]
    # a kernel that forgets the cached window (treats it as zeros) must fail
    fresh = inp | {"conv_state": torch.zeros_like(inp["conv_state"])}
    assert not compare(SPEC.reference(fresh, case, "bf16")["y"], ref, tol).ok
    # the newest cached input sits last: reversing the window must fail too
    flipped = inp | {"conv_state": inp["conv_state"].flip(-1)}
    assert not compare(SPEC.reference(flipped, case, "bf16")["y"], ref, tol).ok


def test_conv_state_output_is_the_shifted_window():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    out, ref, tol = SPEC.make_output(inp, case, "bf16"), SPEC.reference(inp, case, "bf16"), SPEC.tolerance("bf16")
    assert set(out) == set(ref) == set(tol) == {"y", "conv_state"}
    st = ref["conv_state"]
    assert st.shape == inp["conv_state"].shape and out["conv_state"].dtype == inp["conv_state"].dtype
    assert torch.equal(st[:, :, :-1].to(torch.bfloat16), inp["conv_state"][:, :, 1:])
    assert torch.equal(st[:, :, -1].to(torch.bfloat16), inp["x"])
    # a kernel that leaves the state unshifted must fail
    assert not compare({"y": ref["y"], "conv_state": inp["conv_state"]}, ref, tol).ok
