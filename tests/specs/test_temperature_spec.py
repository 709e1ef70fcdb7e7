"""The temperature contract: skip rules for T = 0 and 1, per-row division, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.temperature import SPEC

CPU = torch.device("cpu")


def test_reference_row_by_row():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp32")
    for b in range(case.params["B"]):
        t = float(inp["temperature"][int(inp["mapping"][b])])
        want = inp["logits"][b].double() if t in (0.0, 1.0) else inp["logits"][b].double() / t
        assert torch.allclose(ref[b], want)


def test_inputs_cover_skip_rows_and_tolerance_rejects_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=2)
    temps = inp["temperature"][inp["mapping"].long()]
    assert (temps == 0).any() and ((temps != 0) & (temps != 1)).any()
    assert len(set(inp["mapping"].tolist())) == case.params["B"]
    ref = SPEC.reference(inp, case, "fp32")
    tol = SPEC.tolerance("fp32")
    assert compare(ref.float(), ref, tol).ok
    assert not compare(inp["logits"], ref, tol).ok  # temperature never applied
    t = inp["temperature"][inp["mapping"].long()][:, None]
    scaled = torch.where((t == 0) | (t == 1), inp["logits"], inp["logits"] * t)  # multiplied, not divided
    assert not compare(scaled, ref, tol).ok
    # temperature read by batch row instead of through the request-state mapping
    t_row = inp["temperature"][: case.params["B"]][:, None]
    by_row = torch.where((t_row == 0) | (t_row == 1), inp["logits"], inp["logits"] / t_row)
    assert not compare(by_row, ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("qwen3-235b-a22b"))
    assert cases and all(c.params["V"] == 151936 for c in cases)
