"""The fused SiLU-mul + fp8 group quant contract: reference vs a naive loop, planted bugs, aligned cases."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.activation.silu_mul_fp8_quant import SPEC

CPU = torch.device("cpu")


def naive(x: torch.Tensor, group: int) -> torch.Tensor:
    n = x.shape[1] // 2
    out = torch.empty(x.shape[0], n, dtype=torch.float64)
    for r in range(x.shape[0]):
        g = x[r, :n].float()
        y = ((g * torch.sigmoid(g)).bfloat16().float() * x[r, n:].float()).bfloat16().float()
        for c in range(0, n, group):
            v = y[c:c + group]
            s = torch.clamp(v.abs().max(), min=1e-10) * (1.0 / 448.0)
            out[r, c:c + group] = (v / s).clamp(-448, 448).to(torch.float8_e4m3fn).double() * s.double()
    return out


def test_reference_matches_naive_loop():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        ref = SPEC.reference(inp, case, "bf16").double()
        want = naive(inp["x"], case.params["G"])
        # sigmoid vs 1/(1+exp) may differ by one bf16 ulp on a few elements
        assert compare(ref.float(), want, SPEC.tolerance("bf16")).ok


def test_tolerance_rejects_unquantized_and_plain_silu_mul():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "bf16")
    x = inp["x"].float()
    n = x.shape[1] // 2
    assert not compare(torch.nn.functional.silu(x[:, :n]) * x[:, n:], ref, SPEC.tolerance("bf16")).ok


def test_cases_aligned():
    cases = SPEC.cases(load_model("deepseek-v3"), quick=True)
    assert cases and all(c.params["R"] % 128 == 0 and c.params["N"] == 256 for c in cases)
    assert not SPEC.cases(load_model("qwen3-235b-a22b"))  # N = 192 is not a multiple of 128
