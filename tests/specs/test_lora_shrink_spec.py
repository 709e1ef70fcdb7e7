"""The multi-LoRA shrink contract: reference vs a token-by-token loop, the token mapping, a planted bug."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.lora.lora_shrink import SPEC as SHRINK

CPU = torch.device("cpu")


def test_mapping_has_base_and_adapter_tokens():
    case = SHRINK.test_cases()[0]
    m = SHRINK.make_inputs(case, "bf16", CPU, seed=1)["mapping"]
    assert m.dtype == torch.int32 and int(m.min()) == -1 and int(m.max()) == case.params["L"] - 1
    assert torch.equal(m, SHRINK.make_inputs(case, "bf16", CPU, seed=1)["mapping"])



def test_shrink_reference_matches_token_loop():
    for case in SHRINK.test_cases():
        inp = SHRINK.make_inputs(case, "bf16", CPU, seed=2)
        ref = SHRINK.reference(inp, case, "bf16")
        for t, lora in enumerate(inp["mapping"].tolist()):
            for s in range(case.params["S"]):
                want = torch.zeros(case.params["r"]) if lora < 0 else \
                    inp["scale"] * (inp["lora_a"][s, lora].double() @ inp["x"][t].double()).float()
                assert torch.allclose(ref[s, t], want, rtol=1e-4, atol=1e-5)



def test_tolerance_rejects_wrong_adapter():
    case = SHRINK.check_cases()[0]
    inp = SHRINK.make_inputs(case, "bf16", CPU, seed=4)
    ref = SHRINK.reference(inp, case, "bf16")
    shifted = inp | {"mapping": torch.where(inp["mapping"] >= 0, (inp["mapping"] + 1) % 4, inp["mapping"])}
    assert not compare(SHRINK.reference(shifted, case, "bf16"), ref, SHRINK.tolerance("bf16")).ok


def test_cases_from_model():
    cases = SHRINK.cases(load_model("qwen3-235b-a22b"))
    assert {c.params["r"] for c in cases} == {16, 64} and all(c.params["H"] == 4096 for c in cases)
