"""The solve_tril contract: the reference is the inverse of I + A block by block, inputs are GDN kkt blocks."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.linear.chunk_scaled_dot_kkt import CHUNK
from harness.specs.linear.solve_tril import SPEC

CPU = torch.device("cpu")


def _blocks(cu):
    bounds = cu.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        for c in range(s, e, CHUNK):
            yield c, min(c + CHUNK, e) - c


def test_reference_inverts_each_block():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        assert ref.shape == SPEC.make_output(inp, case, "bf16").shape
        for c, n in _blocks(inp["cu_seqlens"]):
            for h in range(ref.shape[2]):
                a = inp["A"][0, c:c + n, h, :n].double()
                ai = ref[0, c:c + n, h, :n].double()
                eye = torch.eye(n, dtype=torch.float64)
                assert torch.allclose((eye + a) @ ai, eye, atol=1e-5)
                assert torch.equal(ai.triu(1), torch.zeros_like(ai))  # lower triangular with unit diagonal
                assert torch.allclose(ai.diagonal(), torch.ones(n, dtype=torch.float64))
            assert not ref[0, c:c + n, :, n:].any()  # columns past a partial chunk stay zero


def test_inputs_are_strictly_lower_and_seeded():
    case = SPEC.test_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["A"], SPEC.make_inputs(case, "bf16", CPU, seed=1)["A"])
    assert not torch.equal(a["A"], SPEC.make_inputs(case, "bf16", CPU, seed=2)["A"])
    for c, n in _blocks(a["cu_seqlens"]):
        blk = a["A"][0, c:c + n, :, :n].permute(1, 0, 2)
        assert not blk.triu().any() and blk.abs().sum() > 0
    assert a["A"].dtype == torch.float32


def test_tolerance_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # I - A (first-order Neumann term only): what a kernel that skips the off-diagonal merges gets close to
    eye_minus_a = -inp["A"].clone()
    for c, n in _blocks(inp["cu_seqlens"]):
        eye_minus_a[0, c:c + n, :, :n] += torch.eye(n)[:, None, :]
    assert not compare(eye_minus_a, ref, tol).ok
    assert not compare(SPEC.reference(inp | {"A": inp["A"] * 0.5}, case, "bf16"), ref, tol).ok
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:, :-1].copy_(ref[:, :-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_cases_and_counts():
    qwen = load_model("qwen3-next-80b-a3b")
    assert SPEC.cases(qwen) and SPEC.cases(load_model("kimi-linear-48b-a3b")) == []
    c = Case("x", "prefill", {"T": 100, "N": 1, "H": 1, "HV": 2, "K": 128})
    assert SPEC.flops(c) == 2 * 2 * 2 * 64 ** 3 / 3  # 2 chunks x 2 heads
    assert SPEC.bytes(c, "bf16") == 100 * 2 * 64 * 6
