"""The fused MoE router contract: reference vs a per-token loop, unambiguous top-k, planted bugs (no soft-cap,
renormalized weights, a wrong expert) fail the tolerance."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.moe.moe_router import SPEC, TIE_MARGIN

CPU = torch.device("cpu")


def loop(inp, p, cap: bool = True, renormalize: bool = False, swap_last: bool = False) -> torch.Tensor:
    x, w = inp["x"].double(), inp["router_weight"].double()
    out = torch.zeros(x.shape[0], w.shape[0], dtype=torch.float64)
    for t in range(x.shape[0]):
        logits = [float(x[t] @ w[e]) for e in range(w.shape[0])]
        if cap:
            logits = [p["cap"] * math.tanh(v / p["cap"]) for v in logits]
        z = sum(math.exp(v - max(logits)) for v in logits)
        order = sorted(range(len(logits)), key=lambda e: -logits[e])
        chosen = order[:p["top_k"]]
        if swap_last:
            chosen = chosen[:-1] + [order[p["top_k"]]]
        total = sum(math.exp(logits[e] - max(logits)) / z for e in chosen)
        for e in chosen:
            v = math.exp(logits[e] - max(logits)) / z
            out[t, e] = v / total if renormalize else v
    return out


def test_reference_matches_loop_and_rejects_bugs():
    tol = SPEC.tolerance("bf16")
    for case in SPEC.test_cases():
        p = case.params
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
        ref = SPEC.reference(inp, case, "bf16")
        assert torch.allclose(ref.double(), loop(inp, p), rtol=1e-5, atol=1e-7)
        assert (ref > 0).sum(-1).eq(p["top_k"]).all()
        assert not compare(loop(inp, p, cap=False).float(), ref, tol).ok
        assert not compare(loop(inp, p, renormalize=True).float(), ref, tol).ok
        assert not compare(loop(inp, p, swap_last=True).float(), ref, tol).ok


def test_inputs_have_unambiguous_top_k():
    case = SPEC.check_cases()[1]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=0)
    p = case.params
    logits = inp["x"].double() @ inp["router_weight"].double().t()
    v = torch.topk(p["cap"] * torch.tanh(logits / p["cap"]), p["top_k"] + 1, dim=-1).values
    assert ((v[:, -2] - v[:, -1]) >= TIE_MARGIN).all()


def test_cases_only_for_soft_capped_routers():
    assert SPEC.cases(load_model("qwen3-235b-a22b")) == []
