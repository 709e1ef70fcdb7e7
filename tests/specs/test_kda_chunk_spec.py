"""The chunked KDA prefill contract: varlen reference (o and final_state) vs a scalar-loop recurrence per
(sequence, head)."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.kda_chunk import SPEC, chunk_lens

CPU = torch.device("cpu")


def naive_varlen(inp) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = inp["q"][0].double(), inp["k"][0].double(), inp["v"][0].double()
    g, beta, s0 = inp["g"][0].double(), inp["beta"][0].double(), inp["initial_state"].double()
    cu = inp["cu_seqlens"].tolist()
    h_n, hv_n = q.shape[1], v.shape[1]
    out = torch.zeros_like(v)
    final = torch.zeros_like(s0)
    for b in range(len(cu) - 1):
        for hv in range(hv_n):
            h = hv // (hv_n // h_n)
            s = s0[b, hv].clone()
            for t in range(cu[b], cu[b + 1]):
                qt = q[t, h] / (q[t, h].dot(q[t, h]) + 1e-6).sqrt()
                kt = k[t, h] / (k[t, h].dot(k[t, h]) + 1e-6).sqrt()
                s = g[t, hv].exp()[:, None] * s
                s = s + beta[t, hv] * torch.outer(kt, v[t, hv] - s.t() @ kt)
                out[t, hv] = s.t() @ (qt * inp["scale"])
            final[b, hv] = s
    return out[None], final


def test_reference_matches_naive_varlen():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        o, final = naive_varlen(inp)
        assert set(ref) == {"o", "final_state"} and ref["final_state"].dtype == torch.float32
        assert torch.allclose(ref["o"].double(), o, rtol=1e-4, atol=1e-5)
        assert torch.allclose(ref["final_state"].double(), final, rtol=1e-4, atol=1e-5)


def test_output_buffers_match_the_reference():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=3)
    out, ref = SPEC.make_output(inp, case, "fp16"), SPEC.reference(inp, case, "fp16")
    assert out["o"].dtype == torch.float16 and out["final_state"].dtype == torch.float32
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in ref.items()}
    assert out["final_state"].shape == (case.params["B"], case.params["HV"], case.params["K"], case.params["V"])


def test_inputs_varlen_seeded():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["q"], b["q"]) and torch.equal(a["initial_state"], b["initial_state"])
    lens = chunk_lens(case.params)
    assert len(set(lens)) > 1 and a["cu_seqlens"].tolist()[-1] == sum(lens) == a["q"].shape[1]
    assert a["cu_seqlens"].dtype == torch.int64 and a["initial_state"].shape[0] == case.params["B"]
    assert (a["g"] < 0).all() and a["initial_state"].dtype == torch.float32


def test_tolerance_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert set(tol) == {"o", "final_state"}
    assert compare({"o": ref["o"].to(torch.bfloat16), "final_state": ref["final_state"]}, ref, tol).ok
    # sequences not separated (state carried across the varlen boundary)
    n = inp["q"].shape[1]
    one = inp | {"cu_seqlens": torch.tensor([0, n]), "initial_state": inp["initial_state"][:1]}
    assert not compare(SPEC.reference(one, case, "bf16"), ref, tol).ok
    # cached state ignored
    zero = inp | {"initial_state": torch.zeros_like(inp["initial_state"])}
    assert not compare(SPEC.reference(zero, case, "bf16"), ref, tol).ok
    # final state skipped (initial state passed through) or stored for the wrong sequence
    assert not compare({"o": ref["o"], "final_state": inp["initial_state"]}, ref, tol).ok
    assert not compare({"o": ref["o"], "final_state": ref["final_state"].roll(1, 0)}, ref, tol).ok
    # the last token's update left out of the final state
    last = torch.zeros(n, dtype=torch.bool)
    last[inp["cu_seqlens"][1:] - 1] = True
    short = inp | {"beta": torch.where(last[None, :, None], 0.0, inp["beta"].float()).to(inp["beta"].dtype)}
    assert not compare({"o": ref["o"], "final_state": SPEC.reference(short, case, "bf16")["final_state"]}, ref, tol).ok


def test_cases_from_model_yaml():
    kimi = load_model("kimi-linear-48b-a3b")
    cases = SPEC.cases(kimi)
    assert [c.params["B"] * c.params["S"] for c in cases] == kimi.tokens("prefill")
    assert cases[0].params["H"] == 16 and cases[0].params["K"] == 128
    assert SPEC.cases(load_model("deepseek-v3")) == []


def test_flop_and_byte_counts():
    c = Case("x", "prefill", {"B": 1, "S": 64, "H": 1, "HV": 1, "K": 8, "V": 8, "ragged": 0})
    assert SPEC.flops(c) > 64 * 7 * 8 * 8  # at least the recurrence's own work
    # per token q, k, v, o, g, beta; the fp32 state read (initial) and written (final) once
    assert SPEC.bytes(c, "bf16") == 64 * (2 * 8 * 2 + 2 * 8 * 2 + 8 * 4 + 2) + 2 * 8 * 8 * 4
