"""The SageAttention contract: fp32 reference vs naive loops, the INT8 tolerance against a torch emulation of
SageAttention v1's quantization, planted bugs, model cases, counts."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.quantized_attention.sageattn import SPEC

CPU = torch.device("cpu")


def naive_attention(inp) -> torch.Tensor:
    q, k, v = inp["q"].double(), inp["k"].double(), inp["v"].double()
    b_n, hq, s_n, _ = q.shape
    group = hq // k.shape[1]
    out = torch.zeros_like(q)
    for b in range(b_n):
        for h in range(hq):
            for i in range(s_n):
                n = i + 1 if inp["causal"] else s_n
                sc = [float(q[b, h, i] @ k[b, h // group, j]) * inp["sm_scale"] for j in range(n)]
                m = max(sc)
                w = [math.exp(x - m) for x in sc]
                out[b, h, i] = sum(wj * v[b, h // group, j] for j, wj in enumerate(w)) / sum(w)
    return out


def per_block_fake_int8(x: torch.Tensor, blk: int) -> torch.Tensor:
    """[B, H, S, D] -> quantize-dequantize per block of `blk` tokens (scale = amax / 127, round half away)."""
    b, h, s, d = x.shape
    pad = (-s) % blk
    xp = torch.nn.functional.pad(x.float(), (0, 0, 0, pad)).view(b, h, -1, blk, d)
    scale = xp.abs().amax(dim=(3, 4), keepdim=True) / 127.0
    qx = torch.trunc(xp / scale + 0.5 * torch.sign(xp / scale))
    return (qx * scale).view(b, h, -1, d)[:, :, :s]


def sage_emulation(inp) -> torch.Tensor:
    """SageAttention v1 in torch: smooth K, INT8 per-block Q (128) / K (64), fp16 P and V."""
    q, k, v = inp["q"].float(), inp["k"].float(), inp["v"].half().float()
    k = k - k.mean(dim=2, keepdim=True)
    qd, kd = per_block_fake_int8(q * inp["sm_scale"], 128), per_block_fake_int8(k, 64)
    group = q.shape[1] // k.shape[1]
    kd, v = kd.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = qd @ kd.transpose(-1, -2)
    if inp["causal"]:
        n = s.shape[-1]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    p = torch.softmax(s, dim=-1).half().float()
    return p @ v


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "fp16", CPU, seed=3)
        assert torch.allclose(SPEC.reference(inp, case, "fp16").double(), naive_attention(inp), rtol=1e-4, atol=1e-5)


def test_inputs_seeded_with_key_offset():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["k"], b["k"]) and a["q"].abs().sum() > 0 and a["v"].abs().sum() > 0
    # keys carry a per-channel offset large against their spread (what K smoothing removes)
    mean = a["k"].float().mean(dim=2)
    assert mean.abs().mean() > 1.0


def test_tolerance_accepts_int8_emulation_and_rejects_planted_bugs():
    for case in SPEC.check_cases():
        for dtype in SPEC.dtypes:
            inp = SPEC.make_inputs(case, dtype, CPU, seed=5)
            ref = SPEC.reference(inp, case, dtype)
            tol = SPEC.tolerance(dtype)
            emu = compare(sage_emulation(inp).to(inp["q"].dtype), ref, tol)
            assert emu.ok and emu.rel_err > 1e-3, emu  # real quantization error, accepted
            bad_scale = SPEC.reference(inp | {"sm_scale": 1.0}, case, dtype)
            assert not compare(bad_scale, ref, tol).ok
            flipped = SPEC.reference(inp | {"causal": not inp["causal"]}, case, dtype)
            assert not compare(flipped, ref, tol).ok


def test_cases_from_model_yaml():
    qwen = load_model("qwen3-235b-a22b")
    cases = SPEC.cases(qwen)
    assert {c.params["causal"] for c in cases} == {0, 1}
    assert [c.params["S"] for c in cases if c.params["causal"]] == qwen.tokens("prefill")
    assert cases[0].params["Hq"] == 8 and cases[0].params["Hkv"] == 1 and cases[0].params["D"] == 128
    assert SPEC.cases(load_model("deepseek-v3")) == []  # MLA, no GQA section


def test_flop_and_byte_counts():
    c = Case("x", "prefill", {"B": 1, "S": 4, "Hq": 2, "Hkv": 1, "D": 8, "causal": 1})
    assert SPEC.flops(c) == 4.0 * 2 * 10 * 8
    assert SPEC.flops(Case("x", "prefill", {**c.params, "causal": 0})) == 4.0 * 2 * 16 * 8
    assert SPEC.bytes(c, "fp16") == 4 * 8 * 2 * (2 * 2 + 2 * 1)
