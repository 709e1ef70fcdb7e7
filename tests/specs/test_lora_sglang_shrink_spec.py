"""SGLang's LoRA shrink contract (sglang_chunked_lora_shrink, sglang_sgemm_lora_a): reference vs a token loop, the
request layout, the cases per model, planted bugs."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.lora._common import request_layout
from harness.specs.lora.sglang_chunked_lora_shrink import SPEC as CHUNKED
from harness.specs.lora.sglang_sgemm_lora_a import SPEC as SGEMM

CPU = torch.device("cpu")
SPECS = [pytest.param(CHUNKED, id=CHUNKED.id), pytest.param(SGEMM, id=SGEMM.id)]


@pytest.mark.parametrize("spec", SPECS)
def test_reference_matches_token_loop(spec):
    for case in spec.test_cases():
        inp = spec.make_inputs(case, "bf16", CPU, seed=2)
        ref = spec.reference(inp, case, "bf16")
        assert ref.shape == spec.make_output(inp, case, "bf16").shape
        for t, lora in enumerate(inp["mapping"].tolist()):
            want = torch.zeros(ref.shape[1], dtype=torch.float64) if lora < 0 else \
                inp["lora_a"][lora].double() @ inp["x"][t].double()
            assert torch.allclose(ref[t].double(), want, rtol=1e-4, atol=1e-5)


def test_request_layout_per_regime():
    g = torch.Generator().manual_seed(0)
    lens, loras = request_layout(37, 4, "decode", g)
    assert lens == [1] * 37 and loras[0] == -1 and loras[-1] == 3 and set(loras) <= set(range(-1, 4))
    lens, loras = request_layout(2048, 4, "prefill", g)
    assert len(lens) == 8 and sum(lens) == 2048 and min(lens) >= 1
    lens, loras = request_layout(13, 3, "test", g)
    assert sum(lens) == 13 and max(lens) <= 8 and -1 in loras and 2 in loras
    assert request_layout(1, 1, "decode", g) == ([1], [0])


def test_mapping_follows_requests_and_seed():
    case = CHUNKED.test_cases()[0]
    a = CHUNKED.make_inputs(case, "bf16", CPU, seed=1)
    b = CHUNKED.make_inputs(case, "bf16", CPU, seed=1)
    assert a["seg_lens"] == b["seg_lens"] and torch.equal(a["mapping"], b["mapping"])
    want = torch.repeat_interleave(torch.tensor(a["req_loras"]), torch.tensor(a["seg_lens"]))
    assert torch.equal(a["mapping"].long(), want) and a["mapping"].dtype == torch.int32


@pytest.mark.parametrize("spec", SPECS)
def test_tolerance_rejects_wrong_adapter_and_unzeroed_base_rows(spec):
    case = spec.check_cases()[1]
    inp = spec.make_inputs(case, "bf16", CPU, seed=4)
    ref = spec.reference(inp, case, "bf16")
    tol = spec.tolerance("bf16")
    assert compare(ref.bfloat16(), ref, tol).ok  # SGLang's own bf16 output rounding passes
    m = inp["mapping"]
    shifted = inp | {"mapping": torch.where(m >= 0, (m + 1) % case.params["L"], m)}
    assert not compare(spec.reference(shifted, case, "bf16"), ref, tol).ok
    all_rows = inp["x"].float() @ inp["lora_a"][0].float().t()  # base-model rows left as some adapter's product
    leaky = torch.where((m >= 0)[:, None], ref, all_rows)
    assert not compare(leaky, ref, tol).ok


def test_cases_from_models():
    qwen = CHUNKED.cases(load_model("qwen3-235b-a22b"))
    assert {c.params["layer"] for c in qwen} == {"proj", "qkv"}  # no dense MLP: no gate_up
    qkv = next(c for c in qwen if c.params["layer"] == "qkv")
    assert (qkv.params["H"], qkv.params["N"], qkv.params["Nkv"]) == (4096, 8 * 128, 1 * 128)  # TP 8
    assert {c.params["r"] for c in qwen} == {16, 64}
    gemma = SGEMM.cases(load_model("gemma3-27b"), quick=True)
    assert {c.params["layer"] for c in gemma} == {"proj", "qkv", "gate_up"}
    assert next(c for c in gemma if c.params["layer"] == "gate_up").params["N"] == 21504
    assert {c.params["layer"] for c in CHUNKED.cases(load_model("deepseek-v3"))} == {"proj", "gate_up"}  # MLA
    assert [c.shape_json() for c in CHUNKED.cases(load_model("gemma3-27b"))] == \
        [c.shape_json() for c in SGEMM.cases(load_model("gemma3-27b"))]
