"""The top-k / top-p contract: reference vs a per-row sort-and-scan loop, row kinds, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.min_p import FILTERED
from harness.specs.sampling.top_k_top_p import SPEC

CPU = torch.device("cpu")


def loop_keep(row: torch.Tensor, k: int, p: float) -> set[int]:
    order = sorted(range(row.numel()), key=lambda v: -float(row[v]))[:k]
    vals = torch.tensor([float(row[v]) for v in order], dtype=torch.float64)
    probs = torch.softmax(vals, 0).tolist()
    kept, mass = [], 0.0
    for v, q in zip(order, probs):
        if p < 1.0 and mass >= p:
            break
        kept.append(v)
        mass += q
    return set(kept)


def test_reference_matches_loop():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp32")
    for b in range(case.params["B"]):
        want = loop_keep(inp["logits"][b], int(inp["k"][b]), float(inp["p"][b]))
        got = set((ref[b] != FILTERED).nonzero()[:, 0].tolist())
        assert got == want, b
        assert torch.equal(ref[b][list(got)], inp["logits"][b][list(got)].double())


def test_row_kinds_and_tolerance():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=2)
    v = case.params["V"]
    assert (inp["k"] == v).any() and (inp["p"] == 1).any() and ((inp["k"] < v) & (inp["p"] < 1)).any()
    ref = SPEC.reference(inp, case, "fp32")
    tol = SPEC.tolerance("fp32")
    assert compare(ref.float(), ref, tol).ok
    top_k_only = SPEC.reference(inp | {"p": torch.ones_like(inp["p"])}, case, "fp32")
    assert not compare(top_k_only, ref, tol).ok  # top-p skipped


def test_cases_from_model():
    assert SPEC.cases(load_model("deepseek-v3"), quick=True)
