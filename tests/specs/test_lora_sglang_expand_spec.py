"""SGLang's LoRA expand contract (sglang_chunked_lora_expand, sglang_qkv_lora_b, sglang_gate_up_lora_b,
sglang_sgemm_lora_b): reference vs a token/slice loop, the slice layouts, planted bugs."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.lora._common import slice_widths
from harness.specs.lora.sglang_chunked_lora_expand import SPEC as CHUNKED
from harness.specs.lora.sglang_gate_up_lora_b import SPEC as GATE_UP
from harness.specs.lora.sglang_qkv_lora_b import SPEC as QKV
from harness.specs.lora.sglang_sgemm_lora_b import SPEC as SGEMM

CPU = torch.device("cpu")
SPECS = [pytest.param(s, id=s.id) for s in (CHUNKED, QKV, GATE_UP, SGEMM)]


@pytest.mark.parametrize("spec", SPECS)
def test_reference_matches_token_loop(spec):
    for case in spec.test_cases():
        inp = spec.make_inputs(case, "bf16", CPU, seed=3)
        ref = spec.reference(inp, case, "bf16")
        r = case.params["r"]
        for t, lora in enumerate(inp["mapping"].tolist()):
            want = inp["base"][t].double().clone()
            if lora >= 0:
                off = 0
                for s, n in enumerate(slice_widths(case.params)):
                    b = inp["lora_b"][lora, off:off + n].double()
                    want[off:off + n] += inp["scalings"][lora] * (b @ inp["xa"][t, s * r:(s + 1) * r].double())
                    off += n
            assert torch.allclose(ref[t].double(), want, rtol=1e-4, atol=1e-4)


def test_slice_layouts():
    assert slice_widths({"layer": "qkv", "N": 64, "Nkv": 32}) == [64, 32, 32]
    assert slice_widths({"layer": "gate_up", "N": 72}) == [72, 72]
    assert slice_widths({"layer": "proj", "N": 96}) == [96]
    case = QKV.test_cases()[0]
    inp = QKV.make_inputs(case, "bf16", CPU, seed=1)
    assert inp["xa"].shape == (13, 3 * 8) and inp["lora_b"].shape == (3, 64 + 2 * 32, 8)
    assert inp["base"].shape == (13, 128) and len(set(inp["scalings"])) == 3


@pytest.mark.parametrize("spec", SPECS)
def test_tolerance_rejects_planted_bugs(spec):
    case = spec.check_cases()[1]
    inp = spec.make_inputs(case, "bf16", CPU, seed=5)
    ref = spec.reference(inp, case, "bf16")
    tol = spec.tolerance("bf16")
    assert compare(ref.bfloat16(), ref, tol).ok
    bad = {
        "no base": inp | {"base": torch.zeros_like(inp["base"])},
        "no scaling": inp | {"scalings": [1.0] * case.params["L"]},
        "one scaling for all adapters": inp | {"scalings": [inp["scalings"][0]] * case.params["L"]},
        "wrong adapter": inp | {"mapping": torch.where(inp["mapping"] >= 0, (inp["mapping"] + 1) % case.params["L"],
                                                       inp["mapping"])},
    }
    for what, wrong in bad.items():
        assert not compare(spec.reference(wrong, case, "bf16"), ref, tol).ok, what
    assert not compare(inp["base"].float(), ref, tol).ok  # delta missing


def test_qkv_slices_read_their_own_rank_columns():
    case = QKV.check_cases()[1]
    inp = QKV.make_inputs(case, "bf16", CPU, seed=6)
    ref = QKV.reference(inp, case, "bf16")
    r = case.params["r"]
    swapped = inp["xa"].clone()
    swapped[:, r:2 * r], swapped[:, 2 * r:] = inp["xa"][:, 2 * r:], inp["xa"][:, r:2 * r]  # k <-> v columns
    assert not compare(QKV.reference(inp | {"xa": swapped}, case, "bf16"), ref, QKV.tolerance("bf16")).ok


def test_cases_from_models():
    assert QKV.cases(load_model("deepseek-v3")) == []  # MLA: no fused qkv_proj
    assert GATE_UP.cases(load_model("qwen3-235b-a22b")) == []  # MoE without a dense MLP
    maverick = GATE_UP.cases(load_model("llama4-maverick"), quick=True)
    assert {c.params["N"] for c in maverick} == {16384 // 8}
    chunked = {c.shape_json() for c in CHUNKED.cases(load_model("llama4-scout"))}
    for spec in (QKV, GATE_UP, SGEMM):
        assert {c.shape_json() for c in spec.cases(load_model("llama4-scout"))} <= chunked
