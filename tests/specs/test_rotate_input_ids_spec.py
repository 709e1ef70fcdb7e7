"""The EAGLE input rotation contract: reference vs a per-sequence python loop, exactness, packing."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.rotate_input_ids import SPEC

CPU = torch.device("cpu")


def loop(inp) -> list[int]:
    ids = inp["input_ids"].tolist()
    for b, (s, n) in enumerate(zip(inp["extend_start_loc"].tolist(), inp["extend_seq_lens"].tolist())):
        ids[s:s + n] = ids[s + 1:s + n] + [int(inp["topk_index"][b])]
    return ids


def test_reference_matches_loop():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "int64", CPU, seed=1)
        assert SPEC.reference(inp, case, "int64").long().tolist() == loop(inp)


def test_inputs_and_exactness():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int64", CPU, seed=2)
    lens = inp["extend_seq_lens"]
    assert int(lens.min()) >= 1 and int(lens.sum()) == inp["input_ids"].numel()
    assert inp["extend_start_loc"].tolist()[1] == int(lens[0])
    ref = SPEC.reference(inp, case, "int64")
    assert not compare(inp["input_ids"], ref, SPEC.tolerance("int64")).ok  # not rotated
    assert compare(ref.long(), ref, SPEC.tolerance("int64")).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("deepseek-v3"), quick=True)[0].params == {"B": 1, "V": 129280}
