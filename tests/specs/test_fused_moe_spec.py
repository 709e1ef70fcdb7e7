"""The fused-MoE contract on tiny odd shapes: inputs, reference, routing, tolerances, counts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.correctness import check_call, compare
from harness.shapes import load_model
from harness.specs.moe.fused_moe import FP8, SPEC, dequantize_weight_block, quantize_weight_block
from harness.specs.moe.routing import align_block_size

CPU = torch.device("cpu")


def dense_reference(inp):
    """Token by token, slot by slot: the math of the docstring, nothing shared with SPEC.reference."""
    h, w1, w2 = inp["hidden_states"].double(), inp["w1"].double(), inp["w2"].double()
    out = torch.zeros_like(h)
    for m in range(h.shape[0]):
        for j in range(inp["topk_ids"].shape[1]):
            e = int(inp["topk_ids"][m, j])
            gu = w1[e] @ h[m]
            n = gu.shape[0] // 2
            out[m] += float(inp["topk_weights"][m, j]) * (w2[e] @ (F.silu(gu[:n]) * gu[n:]))
    return out


def test_reference_matches_dense_math():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        dense = dense_reference(inp)
        assert torch.allclose(ref.double(), dense, rtol=1e-4, atol=1e-5)


def test_inputs_are_random_valid_and_seeded():
    case = SPEC.test_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    c = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    assert torch.equal(a["w1"], b["w1"]) and not torch.equal(a["w1"], c["w1"])
    assert a["hidden_states"].abs().sum() > 0 and a["w2"].abs().sum() > 0
    ids = a["topk_ids"]
    assert ids.dtype == torch.int32 and int(ids.min()) >= 0 and int(ids.max()) < case.params["E"]
    for row in ids.tolist():  # distinct experts per token
        assert len(set(row)) == len(row)
    assert torch.allclose(a["topk_weights"].sum(-1), torch.ones(case.params["M"]))


def test_checker_rejects_near_misses_and_accepts_bf16_rounding():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "bf16")
    tol = SPEC.tolerance("bf16")
    assert compare(ref.to(torch.bfloat16), ref, tol).ok
    # the router weight of one slot forgotten: must fail
    bad = inp | {"topk_weights": torch.ones_like(inp["topk_weights"])}
    assert not compare(SPEC.reference(bad, case, "bf16"), ref, tol).ok
    out = SPEC.make_output(inp, case, "bf16")
    res = check_call(lambda: out[:-1].copy_(ref[:-1]), out, ref, tol)  # last row unwritten
    assert not res.ok and "NaN" in res.reason


def test_fp8_block_quantization_round_trip():
    w = torch.randn(2, 200, 130)
    q, s = quantize_weight_block(w)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (2, 2, 2)
    deq = dequantize_weight_block(q, s)
    rel = (deq - w).norm() / w.norm()
    assert 1e-3 < rel < 5e-2  # real quantization error, not a copy


def test_fp8_reference_is_close_to_bf16_math():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, FP8, CPU, seed=7)
    ref = SPEC.reference(inp, case, FP8)
    deq = inp | {"w1": dequantize_weight_block(inp["w1"], inp["w1_scale"]),
                 "w2": dequantize_weight_block(inp["w2"], inp["w2_scale"])}
    rel = ((ref.double() - dense_reference(deq)).norm() / dense_reference(deq).norm()).item()
    assert 1e-3 < rel < 1e-1  # the activation quantization shows, within fp8's resolution


def test_align_block_size_layout():
    ids = torch.tensor([[3, 1], [3, 0], [1, 3]], dtype=torch.int32)
    sorted_ids, expert_ids, ntp = align_block_size(ids, num_experts=5, block_m=2)
    pad = ids.numel()
    # expert 0: slot 3; expert 1: slots 1, 4; expert 3: slots 0, 2, 5
    assert sorted_ids.tolist() == [3, pad, 1, 4, 0, 2, 5, pad]
    assert expert_ids.tolist() == [0, 1, 3, 3]
    assert ntp.tolist() == [8]


def test_cases_from_model_yaml():
    model = load_model("qwen3-235b-a22b")
    cases = SPEC.cases(model)
    assert cases, "qwen3-235b-a22b has an moe section"
    p = cases[0].params
    assert p["E"] == 128 and p["top_k"] == 8 and p["K"] == 4096 and p["N"] == 1536 // model.tp
    assert {c.regime for c in cases} == {"decode", "prefill"}
    quick = SPEC.cases(model, quick=True)
    assert 0 < len(quick) < len(cases)


def test_flop_and_byte_counts():
    from harness.spec import Case

    c = Case("x", "decode", {"M": 1, "E": 128, "top_k": 8, "K": 4096, "N": 192, "tp": 8})
    assert SPEC.flops(c) == 2 * 8 * 3 * 192 * 4096
    # one token touches exactly top_k experts
    assert abs(SPEC.bytes(c, "bf16") - (8 * 3 * 192 * 4096 * 2 + 4 * 4096 + 64)) < 1
    assert SPEC.bytes(c, FP8) < SPEC.bytes(c, "bf16")


def test_check_case_is_valid_for_every_dtype():
    from harness.specs.moe.fused_moe import SPEC

    for case in SPEC.check_cases():
        for dtype in SPEC.dtypes:
            assert SPEC.invalid_reason(case, dtype) is None, (case, dtype)
