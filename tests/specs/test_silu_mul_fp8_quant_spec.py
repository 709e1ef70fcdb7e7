"""The fused SiLU-mul + fp8 group quant contract (outputs q [R, N] fp8, s [R, N/G] fp32 column-major): reference vs
a naive loop, the emulated device silu within both bounds, planted bugs caught, aligned cases, byte count."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.activation._common import silu_mul_bf16
from harness.specs.activation.silu_mul_fp8_quant import SPEC

CPU = torch.device("cpu")
F8 = torch.float8_e4m3fn


def naive(x: torch.Tensor, group: int, gate_round: bool = True, prod_round: bool = True,
          mul_inv: bool = False, amax_div: float = 448.0) -> dict[str, torch.Tensor]:
    """Row by row, group by group: y = bf16(bf16(silu(gate)) * up), s = amax * (1/448), q = fp8(y / s); the flags
    plant the bugs (or, `mul_inv`, the port's y * (1/s))."""
    n = x.shape[1] // 2
    q = torch.empty(x.shape[0], n, dtype=F8)
    s = torch.empty(x.shape[0], n // group, dtype=torch.float32)
    for r in range(x.shape[0]):
        g = x[r, :n].float()
        act = g * torch.sigmoid(g)
        act = act.bfloat16().float() if gate_round else act
        y = act * x[r, n:].float()
        y = y.bfloat16().float() if prod_round else y
        for c in range(0, n, group):
            v = y[c:c + group]
            sc = torch.clamp(v.abs().max(), min=1e-10) * (1.0 / amax_div)
            q[r, c:c + group] = (v * (1.0 / sc) if mul_inv else v / sc).clamp(-448, 448).to(F8)
            s[r, c // group] = sc
    return {"q": q, "s": s}


def device_like(x: torch.Tensor, group: int, seed: int) -> dict[str, torch.Tensor]:
    """The upstream kernel's arithmetic, emulated: silu through exp2(x * log2 e) (Triton's fast exp) with +-2 fp32
    ulps of noise (ex2.approx, approximate divide), the bf16 roundings, q = y * (1/s)."""
    n = x.shape[1] // 2
    g = x[:, :n].float()
    sil = g / (1 + torch.exp2(-g * 1.4426950408889634))
    k = torch.randint(-4, 5, sil.shape, generator=torch.Generator().manual_seed(seed)).double()
    sil = (sil.double() * (1 + k * 2.0**-24)).float()
    y = (sil.bfloat16().float() * x[:, n:].float()).bfloat16().float()
    yg = y.view(y.shape[0], -1, group)
    s = yg.abs().amax(-1).clamp_min(1e-10) * (1.0 / 448.0)
    q = (yg * (1.0 / s[..., None])).clamp(-448, 448).to(F8)
    return {"q": q.view_as(y), "s": s}


def test_reference_matches_naive_loop_and_outputs():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        ref = SPEC.reference(inp, case, "bf16")
        want = naive(inp["x"], case.params["G"])
        # sigmoid vs 1/(1+exp) may differ by one bf16 ulp on a few elements
        assert compare(want, ref, SPEC.tolerance("bf16")).ok
        out = SPEC.make_output(inp, case, "bf16")
        r, n, g = case.params["R"], case.params["N"], case.params["G"]
        assert set(out) == {"q", "s"} and out["q"].dtype == F8 and out["q"].is_contiguous()
        assert out["q"].shape == ref["q"].shape == (r, n) and out["s"].shape == ref["s"].shape == (r, n // g)
        assert out["s"].dtype == torch.float32 and out["s"].stride() == (1, r)  # column-major, as upstream's


def test_tolerance_accepts_device_arithmetic_rejects_bugs():
    tol = SPEC.tolerance("bf16")
    # a shape large enough that the emulated device silu moves some group maxima (rows of one group: N = G)
    case = Case("test", "test", {"R": 2048, "N": 128, "G": 128, "tokens": 2048})
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=4)
    ref = SPEC.reference(inp, case, "bf16")
    dev = device_like(inp["x"], 128, seed=4)
    assert not torch.equal(dev["s"], ref["s"])  # the emulation does move some scales
    assert compare(dev, ref, tol).ok

    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    x, ref = inp["x"], SPEC.reference(inp, case, "bf16")
    assert compare(naive(x, 128, mul_inv=True), ref, tol).ok  # the port's y * (1/s)
    for bug in (dict(gate_round=False), dict(prod_round=False), dict(amax_div=447.0)):
        bad = naive(x, 128, **bug)
        assert not compare(bad, ref, tol).ok, bug
        res = compare({"q": ref["q"], "s": bad["s"]}, ref, tol)  # the scales alone already fail
        assert not res.ok and res.reason.startswith("s:"), (bug, res)
    r, n = ref["q"].shape
    y = silu_mul_bf16(x)
    unrounded = (y.view(r, -1, 128) / ref["s"][..., None]).view(r, n)
    assert not compare({"q": unrounded, "s": ref["s"]}, ref, tol).ok  # no quantization: the noise shows
    assert not compare({"q": naive(x, 64)["q"], "s": ref["s"]}, ref, tol).ok  # wrong group size
    e8m0 = torch.exp2(torch.ceil(torch.log2(ref["s"])))
    assert not compare({"q": ref["q"], "s": e8m0}, ref, tol).ok  # DeepGEMM's e8m0 scales: not this contract
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: (out["q"].copy_(ref["q"]), out["s"][:-1].copy_(ref["s"][:-1])), out, ref, tol)
    assert not res.ok and "NaN" in res.reason and res.reason.startswith("s:")


def test_row_bound_catches_one_wrong_row():
    case = Case("test", "test", {"R": 16384, "N": 256, "G": 128, "tokens": 16384})
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    q = ref["q"].clone()
    q[7000, 128:] = 0  # one zeroed group in one row
    res = compare({"q": q, "s": ref["s"]}, ref, tol)
    assert not res.ok and "row 7000" in res.reason and res.rel_err < tol["q"].rel
    s = ref["s"].clone()
    s[300, 1] *= 1.05  # one scale 5 % off
    res = compare({"q": ref["q"], "s": s}, ref, tol)
    assert not res.ok and "row 300" in res.reason and res.rel_err < tol["s"].rel


def test_cases_aligned_and_bytes():
    cases = SPEC.cases(load_model("deepseek-v3"), quick=True)
    assert cases and all(c.params["R"] % 128 == 0 and c.params["N"] == 256 for c in cases)
    assert not SPEC.cases(load_model("qwen3-235b-a22b"))  # N = 192 is not a multiple of 128
    c = cases[0]
    r, n = c.params["R"], c.params["N"]
    assert SPEC.bytes(c, "bf16") == r * n * 5 + r * (n // 128) * 4 and SPEC.flops(c) > 0
