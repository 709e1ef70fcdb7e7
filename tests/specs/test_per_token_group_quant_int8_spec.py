"""The per-token-group int8 quant contract (truncating cast; outputs q [T, H] int8, s [T, H/G] fp32 row-major):
reference vs a naive loop, one-step flips pass, planted bugs fail."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.specs.quantization.per_token_group_quant_int8 import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, group: int, rounding: bool = False) -> dict[str, torch.Tensor]:
    t, h = x.shape
    q = torch.empty(t, h, dtype=torch.int8)
    s = torch.empty(t, h // group, dtype=torch.float32)
    for i in range(t):
        for g in range(h // group):
            v = x[i, g * group:(g + 1) * group].float()
            sc = torch.clamp(v.abs().max(), min=1e-10) / 127.0
            y = (v / sc).clamp(-128, 127)
            q[i, g * group:(g + 1) * group] = torch.round(y) if rounding else y.to(torch.int8)  # the cast truncates
            s[i, g] = sc
    return {"q": q, "s": s}


def test_reference_matches_naive_loop():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=4)
        ref = SPEC.reference(inp, case, "bf16")
        exp = naive(inp["x"], case.params["G"])
        assert ref["q"].dtype == torch.int8 and torch.equal(ref["q"], exp["q"]) and torch.equal(ref["s"], exp["s"])
        out = SPEC.make_output(inp, case, "bf16")
        assert out["q"].dtype == torch.int8 and out["s"].shape == ref["s"].shape and out["s"].is_contiguous()


def test_tolerance_accepts_flips_rejects_rounding_and_wrong_scale():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=6)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(naive(inp["x"], 128), ref, tol).ok
    # every group's max truncated to 126 instead of 127 (a non-IEEE device division): one step per group
    t, h = inp["x"].shape
    q = ref["q"].clone().view(t, -1, 128)
    q[q == 127] = 126
    q[q == -127] = -126
    assert compare({"q": q.view(t, h), "s": ref["s"]}, ref, tol).ok
    assert not compare({"q": naive(inp["x"], 128, rounding=True)["q"], "s": ref["s"]}, ref, tol).ok
    assert not compare({"q": ref["q"], "s": ref["s"] * (1 + 1e-5)}, ref, tol).ok
    out = SPEC.make_output(inp, case, "bf16")
    # s unwritten in one row: NaN; q unwritten: the checker's int8 poison (-128) is far from every reference value
    res = check_call(lambda: (out["q"].copy_(ref["q"]), out["s"][1:].copy_(ref["s"][1:])), out, ref, tol)
    assert not res.ok and res.reason.startswith("s:") and "NaN" in res.reason
    res = check_call(lambda: (out["q"][:-1].copy_(ref["q"][:-1]), out["s"].copy_(ref["s"])), out, ref, tol)
    assert not res.ok and res.reason.startswith("q:")


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)
