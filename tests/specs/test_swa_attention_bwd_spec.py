"""The sliding-window attention backward contract (swa_attention_bwd) on tiny shapes: the autograd reference
against the closed-form flash-attention gradients."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention import swa_attention as swa
from harness.specs.attention.swa_attention import window_pairs
from harness.specs.attention.swa_attention_bwd import SPEC

CPU = torch.device("cpu")


def closed_form_grads(inp) -> torch.Tensor:
    """dv = P^T dO, dS = P * (dO v^T - rowsum(dO * O)), dq = s dS k, dk = s dS^T q, dense fp64."""
    q, k, v, do = (inp[n].double() for n in ("q", "k", "v", "do"))
    t, half, s = q.shape[2], inp["window"] // 2, inp["sm_scale"]
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    scores = (q @ k.transpose(-1, -2) * s).masked_fill((i - j).abs() > half, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    o = p @ v
    dv = p.transpose(-1, -2) @ do
    ds = p * (do @ v.transpose(-1, -2) - (do * o).sum(-1, keepdim=True))
    return torch.stack([s * ds @ k, s * ds.transpose(-1, -2) @ q, dv])


def test_reference_matches_closed_form(monkeypatch):
    monkeypatch.setattr(swa, "REF_CHUNK", 32)
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "fp16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "fp16").double()
        assert torch.allclose(ref, closed_form_grads(inp), rtol=1e-4, atol=1e-5)


def test_inputs_and_output_layout():
    case = SPEC.test_cases()[1]
    a = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    assert a["do"].shape == a["q"].shape == (1, 2, 128, 32) and a["do"].abs().sum() > 0
    assert not torch.equal(a["do"], a["q"])
    out = SPEC.make_output(a, case, "fp16")
    assert out.shape == (3, 1, 2, 128, 32) and out.dtype == torch.float32


def test_tolerance_rejects_planted_bugs():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "fp16")
    tol = SPEC.tolerance("fp16")
    assert compare(ref.half().float(), ref, tol).ok
    # bug: dk and dv swapped
    assert not compare(ref[[0, 2, 1]], ref, tol).ok
    # bug: dq without the softmax scale
    bad = ref.clone()
    bad[0] /= inp["sm_scale"]
    assert not compare(bad, ref, tol).ok
    # bug: the D_i = rowsum(dO * O) term left out of dS
    no_d = closed_form_grads(inp)
    q, k, v, do = (inp[n].double() for n in ("q", "k", "v", "do"))
    t, half, s = q.shape[2], inp["window"] // 2, inp["sm_scale"]
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    p = torch.softmax((q @ k.transpose(-1, -2) * s).masked_fill((i - j).abs() > half, float("-inf")), -1)
    ds = p * (do @ v.transpose(-1, -2))
    no_d[0] = s * ds @ k
    assert not compare(no_d.float(), ref, tol).ok
    # bug: the window ignored (every query sees only its own key)
    assert not compare(SPEC.reference(inp | {"window": 0}, case, "fp16"), ref, tol).ok


def test_cases_and_counts():
    gemma = load_model("gemma3-27b")
    assert [c.params for c in SPEC.cases(gemma)] == [c.params for c in swa.SPEC.cases(gemma)]
    assert SPEC.cases(load_model("deepseek-v3")) == []
    case = Case("t", "test", {"B": 1, "H": 2, "T": 64, "D": 16, "W": 40})
    assert SPEC.flops(case) == 2.5 * swa.SPEC.flops(case) == 10.0 * window_pairs(64, 40) * 2 * 16
    assert SPEC.bytes(case, "fp16") == 4 * 2048 * 2 + 3 * 2048 * 4
