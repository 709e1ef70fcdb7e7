"""The per-token-group fp8 quant contract (outputs q [T, H] fp8, s [T, H/G] fp32 row-major): reference vs a naive
per-group loop, tolerances vs the SGLang formula, rounding flips and planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.quantization.per_token_group_quant_fp8 import SPEC

CPU = torch.device("cpu")
F8 = torch.float8_e4m3fn


def naive(x: torch.Tensor, group: int, sglang: bool = False) -> dict[str, torch.Tensor]:
    """Group by group; vLLM's kernel: s = amax * (1/448), x / s; SGLang's (`sglang`): s = amax / 448, x * (1/s)."""
    t, h = x.shape
    q = torch.empty(t, h, dtype=F8)
    s = torch.empty(t, h // group, dtype=torch.float32)
    for i in range(t):
        for g in range(h // group):
            v = x[i, g * group:(g + 1) * group].float()
            amax = torch.clamp(v.abs().max(), min=1e-10)
            sc = amax / 448.0 if sglang else amax * (1.0 / 448.0)
            scaled = v * (1.0 / sc) if sglang else v / sc
            q[i, g * group:(g + 1) * group] = scaled.clamp(-448, 448).to(F8)
            s[i, g] = sc
    return {"q": q, "s": s}


def flip_down(q: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """q with the elements (rows, cols) moved one fp8 step toward zero (a rounding-boundary flip)."""
    bits = q.view(torch.uint8).clone()
    bits[rows, cols] -= 1
    return bits.view(F8)


def test_reference_matches_naive_loop_and_outputs():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        exp = naive(inp["x"], case.params["G"])
        assert torch.equal(ref["q"].float(), exp["q"].float()) and torch.equal(ref["s"], exp["s"])
        out = SPEC.make_output(inp, case, "bf16")
        assert set(out) == {"q", "s"} and out["q"].dtype == F8 and out["s"].is_contiguous()
        assert out["q"].shape == ref["q"].shape and out["s"].shape == ref["s"].shape


def test_inputs_seeded_nonzero():
    case = SPEC.test_cases()[0]
    a, b, c = (SPEC.make_inputs(case, "bf16", CPU, seed=s)["x"] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.bfloat16 and (a.float().view(a.shape[0], -1, 128).abs().amax(-1) > 0).all()


def test_tolerance_accepts_sglang_formula_and_flips_rejects_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(naive(inp["x"], 128, sglang=True), ref, tol).ok
    # two rounding-boundary flips of each row's largest elements (the largest steps): still within both bounds
    idx = ref["q"].float().abs().topk(2, dim=1).indices
    rows = torch.arange(idx.shape[0])[:, None]
    assert compare({"q": flip_down(ref["q"], rows, idx), "s": ref["s"]}, ref, tol).ok
    t, h = inp["x"].shape
    unrounded = (inp["x"].float().view(t, -1, 128) / ref["s"][..., None]).view(t, h)
    assert not compare({"q": unrounded, "s": ref["s"]}, ref, tol).ok  # no quantization: the noise shows
    assert not compare({"q": naive(inp["x"], 64)["q"], "s": ref["s"]}, ref, tol).ok  # wrong group size
    assert not compare({"q": ref["q"], "s": ref["s"] * (1 + 1e-5)}, ref, tol).ok  # scale off by 10 ulp
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: (out["q"][:-1].copy_(ref["q"][:-1]), out["s"].copy_(ref["s"])), out, ref, tol)
    assert not res.ok and "NaN" in res.reason and res.reason.startswith("q:")


def test_row_bound_catches_one_zeroed_group():
    """One zeroed group in one row of H = 7168 barely moves the global error at T = 512; the row bound fails it."""
    case = Case("test", "test", {"T": 512, "H": 7168, "G": 128})
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    ref = SPEC.reference(inp, case, "bf16")
    q = ref["q"].clone()
    q[100, 1280:1408] = 0
    res = compare({"q": q, "s": ref["s"]}, ref, SPEC.tolerance("bf16"))
    assert not res.ok and "row 100" in res.reason and res.rel_err < SPEC.tolerance("bf16")["q"].rel


def test_cases_and_counts():
    cases = SPEC.cases(load_model("deepseek-v3"))
    assert cases and all(c.params["H"] == 7168 and c.params["G"] == 128 for c in cases)
    c = cases[0]
    assert SPEC.bytes(c, "bf16") == c.params["T"] * 7168 * 3 + c.params["T"] * 56 * 4 and SPEC.flops(c) > 0
