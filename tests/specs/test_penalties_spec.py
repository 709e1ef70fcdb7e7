"""The penalties contract: bit packing, reference vs a per-element loop, planted bugs."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.sampling.penalties import SPEC, pack_bits, unpack_bits

CPU = torch.device("cpu")


def test_bit_packing_round_trip():
    mask = torch.rand(3, 70, generator=torch.Generator().manual_seed(0)) < 0.3
    mask[0, 31] = True  # the sign bit of word 0
    packed = pack_bits(mask)
    assert packed.dtype == torch.int32 and packed.shape == (3, 3) and int(packed[0, 0]) < 0
    assert torch.equal(unpack_bits(packed, 70), mask)


def test_reference_matches_element_loop():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp32")
    v = case.params["V"]
    for b in range(case.params["B"]):
        i = int(inp["mapping"][b])
        rep, fr, pr = (float(inp[k][i]) for k in ("repetition_penalty", "frequency_penalty", "presence_penalty"))
        words = inp["prompt_bin_mask"][i].tolist()
        for tok in range(0, v, 7):
            c = int(inp["output_bin_counts"][i, tok])
            in_prompt = (words[tok // 32] >> (tok % 32)) & 1
            x = float(inp["logits"][b, tok])
            if in_prompt or c > 0:
                x = x / rep if x > 0 else x * rep
            x -= fr * c + pr * (c > 0)
            assert abs(float(ref[b, tok]) - x) < 1e-9


def test_tolerance_rejects_dropped_prompt_penalty():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=2)
    ref = SPEC.reference(inp, case, "fp32")
    tol = SPEC.tolerance("fp32")
    assert compare(ref.float(), ref, tol).ok
    no_prompt = SPEC.reference(inp | {"prompt_bin_mask": torch.zeros_like(inp["prompt_bin_mask"])}, case, "fp32")
    assert not compare(no_prompt, ref, tol).ok
    assert not compare(inp["logits"], ref, tol).ok


def test_cases_from_model():
    assert SPEC.cases(load_model("gemma3-27b"), quick=True)
