"""The EAGLE next-token contract: reference vs a per-request loop, discarded rows, exactness."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.eagle_prepare_next_token import SPEC

CPU = torch.device("cpu")


def loop(inp, v: int) -> list[int]:
    nxt, cnt = [], []
    for b, row in enumerate(inp["sampled_token_ids"].tolist()):
        valid = [t for t in row if t != -1 and t < v]
        if bool(inp["discard_request_mask"][b]) or not valid:
            nxt.append(int(inp["backup_next_token_ids"][b]))
        else:
            nxt.append(valid[-1])
        cnt.append(0 if bool(inp["discard_request_mask"][b]) else len(valid))
    return nxt + cnt


def test_reference_matches_loop():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "int32", CPU, seed=1)
        assert SPEC.reference(inp, case, "int32").long().tolist() == loop(inp, case.params["V"])


def test_inputs_and_exactness():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=3)
    assert inp["discard_request_mask"].any() and (inp["sampled_token_ids"] == -1).any()
    ref = SPEC.reference(inp, case, "int32")
    assert compare(ref.int(), ref, SPEC.tolerance("int32")).ok
    bad = ref.clone()
    bad[case.params["B"]:] += 1  # counts off by one
    assert not compare(bad, ref, SPEC.tolerance("int32")).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)
