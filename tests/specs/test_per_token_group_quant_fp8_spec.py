"""The per-token-group fp8 quant contract: reference vs a naive per-group loop, tolerance vs planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.specs.quantization.per_token_group_quant_fp8 import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, group: int, sglang: bool = False) -> torch.Tensor:
    """Group by group; vLLM's kernel: s = amax * (1/448), x / s; SGLang's (`sglang`): s = amax / 448, x * (1/s)."""
    out = torch.empty(x.shape, dtype=torch.float64)
    for t in range(x.shape[0]):
        for g0 in range(0, x.shape[1], group):
            v = x[t, g0:g0 + group].float()
            amax = torch.clamp(v.abs().max(), min=1e-10)
            s = amax / 448.0 if sglang else amax * (1.0 / 448.0)
            scaled = v * (1.0 / s) if sglang else v / s
            q = scaled.clamp(-448, 448).to(torch.float8_e4m3fn).float()
            out[t, g0:g0 + group] = q.double() * s.double()
    return out


def test_reference_matches_naive_loop():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.allclose(ref.double(), naive(inp["x"], case.params["G"]), rtol=1e-6, atol=0)


def test_inputs_seeded_nonzero():
    case = SPEC.test_cases()[0]
    a, b, c = (SPEC.make_inputs(case, "bf16", CPU, seed=s)["x"] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.bfloat16 and (a.float().view(a.shape[0], -1, 128).abs().amax(-1) > 0).all()


def test_tolerance_accepts_sglang_formula_rejects_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(naive(inp["x"], 128, sglang=True).float(), ref, tol).ok
    assert not compare(inp["x"].float(), ref, tol).ok  # no quantization at all: the noise shows
    assert not compare(naive(inp["x"], 64).float(), ref, tol).ok  # wrong group size
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:-1].copy_(ref[:-1]), out, ref, tol)
    assert not res.ok and "NaN" in res.reason


def test_cases_and_counts():
    cases = SPEC.cases(load_model("deepseek-v3"))
    assert cases and all(c.params["H"] == 7168 and c.params["G"] == 128 for c in cases)
    c = cases[0]
    assert SPEC.bytes(c, "bf16") == c.params["T"] * 7168 * 6 and SPEC.flops(c) > 0
