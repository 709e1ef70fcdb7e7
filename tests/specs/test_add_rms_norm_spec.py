"""The residual-add + RMSNorm contract: reference vs a row loop (both named outputs), planted bugs, model cases."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.normalization.add_rms_norm import SPEC

CPU = torch.device("cpu")


def naive(inp, eps: float, add: bool = True) -> torch.Tensor:
    x, r, w = inp["x"].double(), inp["residual"].double(), inp["weight"].double()
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        s = x[t] + r[t] if add else x[t]
        out[t] = s / torch.sqrt((s * s).mean() + eps) * w
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        ref = SPEC.reference(inp, case, "bf16")
        assert set(ref) == {"y", "residual_out"}
        assert torch.allclose(ref["y"].double(), naive(inp, case.params["eps"]), rtol=1e-4, atol=1e-5)
        assert torch.equal(ref["residual_out"], inp["x"].float() + inp["residual"])
        out = SPEC.make_output(inp, case, "bf16")
        assert out["y"].dtype == torch.bfloat16 and out["residual_out"].dtype == torch.float32
        assert all(out[k].shape == ref[k].shape for k in ref)


def test_tolerance_rejects_missing_residual():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    r_out = ref["residual_out"]
    assert compare({"y": ref["y"].bfloat16(), "residual_out": r_out.clone()}, ref, tol).ok
    assert not compare({"y": naive(inp, 1e-5, add=False).float(), "residual_out": r_out.clone()}, ref, tol).ok
    # residual rounded to bf16 before the add (residual_in_fp32 ignored) stays within bf16-level error in y...
    rounded = inp | {"residual": inp["residual"].bfloat16().float()}
    assert compare({"y": naive(rounded, 1e-5).float(), "residual_out": r_out.clone()}, ref, tol).ok
    # ...but a residual_out stored in bf16, or not updated (the old residual), fails its own bound
    assert not compare({"y": ref["y"].clone(), "residual_out": r_out.bfloat16().float()}, ref, tol).ok
    assert not compare({"y": ref["y"].clone(), "residual_out": inp["residual"].clone()}, ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("mamba2-2.7b"))
    assert cases and all(c.params["H"] == 2560 for c in cases)
    assert not SPEC.cases(load_model("gemma3-27b"))
