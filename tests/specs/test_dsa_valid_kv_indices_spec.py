"""The DSA index-compaction contract: exact ragged output, valid inputs, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.sparse.dsa_valid_kv_indices import SPEC

CPU = torch.device("cpu")


def naive(inp) -> torch.Tensor:
    out = []
    for row in inp["page_table_1"].tolist():
        out += [x for x in row if x != -1]
    return torch.tensor(out, dtype=torch.int32)


def test_reference_matches_naive():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "int32", CPU, seed=2)
        assert torch.equal(SPEC.reference(inp, case, "int32"), naive(inp))


def test_inputs_valid_and_consistent():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=1)
    table, indptr = inp["page_table_1"], inp["kv_indptr"]
    counts = (table != -1).sum(1)
    assert torch.equal(indptr[1:] - indptr[:-1], counts.to(torch.int32)) and int(indptr[-1]) == inp["nnz"]
    assert int(counts[0]) == case.params["valid"] and len(set(counts.tolist())) > 1
    assert (table[0] == -1).any() and (table[0, -1] == -1 or (table[0, :-1] == -1).any())  # scattered holes
    for row in table.tolist():  # distinct slots per row
        valid = [x for x in row if x != -1]
        assert len(valid) == len(set(valid)) and min(valid) >= 0


def test_exact_tolerance_rejects_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=3)
    ref = SPEC.reference(inp, case, "int32")
    tol = SPEC.tolerance("int32")
    assert compare(ref.clone(), ref, tol).ok
    # in-row order lost (sorted per row)
    rows = [torch.tensor(sorted(x for x in r if x != -1), dtype=torch.int32) for r in inp["page_table_1"].tolist()]
    assert not compare(torch.cat(rows), ref, tol).ok
    out = SPEC.make_output(inp, case, "int32")
    assert not check_call(lambda: out[:-1].copy_(ref[:-1]), out, ref, tol).ok  # last entry unwritten


def test_cases_from_model_yaml():
    ds = load_model("deepseek-v3")
    cases = SPEC.cases(ds)
    assert cases and all(c.params["topk"] == 2048 for c in cases)
    assert all(c.params["valid"] <= 2048 for c in cases)
    assert SPEC.cases(load_model("kimi-k2")) == []


def test_byte_count():
    c = Case("x", "decode", {"B": 2, "topk": 8, "valid": 5})
    assert SPEC.bytes(c, "int32") == 2 * 8 * 4 + 3 * 4 + 2 * 5 * 4 and SPEC.flops(c) == 0.0
