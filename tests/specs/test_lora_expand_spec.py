"""The multi-LoRA expand contract: reference vs a token-by-token loop, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.lora.lora_expand import SPEC as EXPAND

CPU = torch.device("cpu")


def test_expand_reference_matches_token_loop():
    for case in EXPAND.test_cases():
        inp = EXPAND.make_inputs(case, "bf16", CPU, seed=3)
        ref = EXPAND.reference(inp, case, "bf16")
        n = case.params["N"]
        for t, lora in enumerate(inp["mapping"].tolist()):
            want = inp["base"][t].double().clone()
            if lora >= 0:
                for s in range(case.params["S"]):
                    want[s * n:(s + 1) * n] += inp["lora_b"][s, lora].double() @ inp["buf"][s, t].double()
            assert torch.allclose(ref[t].double(), want, rtol=1e-4, atol=1e-4)



def test_tolerance_rejects_missing_base_or_lora():
    case = EXPAND.check_cases()[0]
    inp = EXPAND.make_inputs(case, "bf16", CPU, seed=5)
    ref = EXPAND.reference(inp, case, "bf16")
    tol = EXPAND.tolerance("bf16")
    assert compare(ref.bfloat16(), ref, tol).ok
    no_base = EXPAND.reference(inp | {"base": torch.zeros_like(inp["base"])}, case, "bf16")
    assert not compare(no_base, ref, tol).ok
    no_lora = inp["base"].float()
    assert not compare(no_lora, ref, tol).ok


def test_cases_from_model():
    assert len(EXPAND.cases(load_model("qwen3-235b-a22b"), quick=True)) == 4
