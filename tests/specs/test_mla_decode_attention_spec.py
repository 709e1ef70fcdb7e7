"""The MLA decode contract (absorbed form, paged latent cache) on tiny odd shapes."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.mla_decode_attention import SPEC
from harness.specs.attention.paged_decode_attention import PAGE_SIZE, decode_seq_lens

CPU = torch.device("cpu")


def naive_mla(inp) -> torch.Tensor:
    q, cache, table = inp["q"].double(), inp["kv_cache"].double(), inp["block_table"]
    r = inp["kv_lora_rank"]
    out = torch.zeros(q.shape[0], q.shape[1], r, dtype=torch.float64)
    for b, n in enumerate(inp["seq_lens"].tolist()):
        rows = [cache[int(table[b, j // PAGE_SIZE]), j % PAGE_SIZE] for j in range(n)]
        for h in range(q.shape[1]):
            s = [float(q[b, h] @ c) * inp["sm_scale"] for c in rows]
            m = max(s)
            w = [math.exp(x - m) for x in s]
            out[b, h] = sum(wi * c[:r] for wi, c in zip(w, rows)) / sum(w)
    return out


def test_reference_matches_naive():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        assert torch.allclose(SPEC.reference(inp, case, "bf16").double(), naive_mla(inp), rtol=1e-4, atol=1e-5)


def test_inputs_shapes_and_seed():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["kv_cache"], b["kv_cache"]) and a["q"].abs().sum() > 0
    assert a["q"].shape == (3, 16, 576) and a["kv_cache"].shape[1:] == (PAGE_SIZE, 576)
    assert SPEC.make_output(a, case, "bf16").shape == (3, 16, 512)
    assert math.isclose(a["sm_scale"], 192 ** -0.5)


def test_tolerance_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # rope part of the scores dropped (q . C over the latent only)
    no_rope = inp | {"q": torch.cat([inp["q"][..., :512], torch.zeros_like(inp["q"][..., 512:])], -1)}
    assert not compare(SPEC.reference(no_rope, case, "bf16"), ref, tol).ok
    # scale of the latent head dim (576^-0.5) instead of the model's (192^-0.5)
    assert not compare(SPEC.reference(inp | {"sm_scale": 576 ** -0.5}, case, "bf16"), ref, tol).ok


def test_cases_from_model_yaml():
    ds = load_model("deepseek-v3")
    cases = SPEC.cases(ds)
    assert cases and cases[0].params | {"B": 0, "L": 0} == {"B": 0, "L": 0, "Hq": 16, "R": 512, "P": 64,
                                                             "Dqk": 192}
    assert SPEC.cases(load_model("kimi-k2"))[0].params["Hq"] == 64 // load_model("kimi-k2").tp
    assert SPEC.cases(load_model("qwen3-235b-a22b")) == []


def test_flop_and_byte_counts():
    c = Case("x", "decode", {"B": 2, "L": 64, "Hq": 4, "R": 8, "P": 4, "Dqk": 8})
    tokens = sum(decode_seq_lens(2, 64))
    assert SPEC.flops(c) == 2 * tokens * 4 * (8 + 4 + 8)
    assert SPEC.bytes(c, "bf16") == tokens * 12 * 2 + 2 * 4 * 20 * 2
