"""The AWQ dequantize contract: packing round trip, reference vs an element loop, planted order bug."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization._common import AWQ_ORDER, awq_pack, awq_unpack
from harness.specs.quantization.awq_dequantize import SPEC

CPU = torch.device("cpu")


def nibble(word: int, col: int) -> int:
    """Logical column `col` of an AutoAWQ-packed int32: nibble p holds column AWQ_ORDER[p]."""
    return ((word & 0xFFFFFFFF) >> (4 * AWQ_ORDER.index(col))) & 0xF


def test_pack_round_trip():
    v = torch.randint(0, 16, (5, 24), generator=torch.Generator().manual_seed(0))
    packed = awq_pack(v)
    assert packed.dtype == torch.int32 and torch.equal(awq_unpack(packed), v)
    assert nibble(int(packed[1, 2]), 5) == int(v[1, 2 * 8 + 5])


def test_reference_matches_element_loop():
    case = SPEC.test_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp16")
    g = case.params["G"]
    for k, n in [(0, 0), (5, 17), (95, 39), (33, 8)]:
        w = nibble(int(inp["qweight"][k, n // 8]), n % 8)
        z = nibble(int(inp["qzeros"][k // g, n // 8]), n % 8)
        assert float(ref[k, n]) == (w - z) * float(inp["scales"][k // g, n])


def test_tolerance_rejects_plain_nibble_order():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=2)
    ref = SPEC.reference(inp, case, "fp16")
    tol = SPEC.tolerance("fp16")
    assert compare(ref.half(), ref, tol).ok
    # unpacking nibbles in plain order (forgetting AWQ's interleave) must fail
    p = inp["qweight"].to(torch.int64) & 0xFFFFFFFF
    plain = torch.stack([(p >> (4 * c)) & 0xF for c in range(8)], -1).reshape(p.shape[0], -1).float()
    zero = awq_unpack(inp["qzeros"]).float().repeat_interleave(128, 0)
    bad = (plain - zero) * inp["scales"].float().repeat_interleave(128, 0)
    assert not compare(bad, ref, tol).ok


def test_cases_from_model():
    cases = SPEC.cases(load_model("gemma3-27b"))
    assert {(c.params["K"], c.params["N"]) for c in cases} == {(5376, 43008), (21504, 5376)}
    assert not SPEC.cases(load_model("deepseek-v3"))
