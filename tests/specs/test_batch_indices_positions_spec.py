"""The ragged-append index contract (batch index, KV position per appended token): exact integers."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.batch_indices_positions import SPEC, appends

CPU = torch.device("cpu")


def naive(inp) -> torch.Tensor:
    indptr, lens = inp["append_indptr"].tolist(), inp["seq_lens"].tolist()
    out = [[], []]
    for b in range(len(lens)):
        for i in range(indptr[b], indptr[b + 1]):
            out[0].append(b)
            out[1].append(lens[b] - (indptr[b + 1] - i))
    return torch.tensor(out, dtype=torch.int32)


def test_reference_matches_naive_and_flashinfer_docstring_example():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "int32", CPU, seed=0)
        assert torch.equal(SPEC.reference(inp, case, "int32"), naive(inp))
    # the example of flashinfer.page.get_batch_indices_positions' docstring
    inp = {"append_indptr": torch.tensor([0, 1, 3, 6, 10], dtype=torch.int32),
           "seq_lens": torch.tensor([5, 5, 5, 5], dtype=torch.int32), "nnz": 10}
    ref = SPEC.reference(inp, SPEC.test_cases()[0], "int32")
    assert ref[0].tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    assert ref[1].tolist() == [4, 3, 4, 2, 3, 4, 1, 2, 3, 4]


def test_inputs_valid():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=0)
    app, lens = appends(case.params)
    assert len(set(app)) > 1 and all(n >= a for a, n in zip(app, lens))
    assert inp["append_indptr"].dtype == torch.int32 and int(inp["append_indptr"][-1]) == inp["nnz"]
    assert SPEC.make_output(inp, case, "int32").shape == (2, inp["nnz"])


def test_exact_tolerance_rejects_off_by_one_and_unwritten():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "int32", CPU, seed=0)
    ref = SPEC.reference(inp, case, "int32")
    tol = SPEC.tolerance("int32")
    assert compare(ref.clone(), ref, tol).ok
    bad = ref.clone()
    bad[1, 7] += 1
    assert not compare(bad, ref, tol).ok
    out = SPEC.make_output(inp, case, "int32")
    assert not check_call(lambda: out[0].copy_(ref[0]), out, ref, tol).ok  # positions row never written


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-235b-a22b")
    cases = SPEC.cases(qwen)
    assert [c.params["B"] for c in cases if c.regime == "decode"] == qwen.tokens("decode")
    assert all(c.params["Q"] == 1 for c in cases if c.regime == "decode")
    assert SPEC.cases(load_model("mamba2-2.7b")) == []


def test_byte_count():
    c = Case("x", "decode", {"B": 4, "Q": 1, "ctx": 10, "ragged": 0})
    assert SPEC.bytes(c, "int32") == 5 * 4 + 4 * 4 + 2 * 4 * 4 and SPEC.flops(c) == 0.0
