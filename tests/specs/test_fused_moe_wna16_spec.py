"""The int4 fused-MoE GEMM contract: reference vs a per-slot loop that unpacks nibbles with Python ints, planted
bugs (swapped nibble order, zero point ignored, router weight dropped) fail the tolerance, vLLM's group rule."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.moe.fused_moe_wna16 import SPEC, SYM, ZP, layer_dims, wna16_group

CPU = torch.device("cpu")


def weight_loop(inp, e: int, n: int, k: int, group: int, swap_nibbles: bool = False, ignore_zp: bool = False
                ) -> torch.Tensor:
    w = torch.empty(n, k, dtype=torch.float64)
    qw, sc, qz = inp["qweight"], inp["scales"], inp.get("qzeros")
    for r in range(n):
        for c in range(k):
            byte = int(qw[e, r, c // 2])
            hi = (c % 2 == 1) != swap_nibbles
            v = (byte >> 4) if hi else (byte & 0xF)
            if qz is None or ignore_zp:
                z = 8
            else:
                zb = int(qz[e, r // 2, c // group])
                z = (zb >> 4) if r % 2 else (zb & 0xF)
            w[r, c] = (v - z) * float(sc[e, r, c // group])
    return w


def loop(inp, case, **bug) -> torch.Tensor:
    p = case.params
    k, n, _ = layer_dims(p)
    ids, wts = inp["topk_ids"], inp["topk_weights"]
    m, top_k = ids.shape
    weights = {e: weight_loop(inp, e, n, k, p["G"], **{k_: v for k_, v in bug.items() if k_ != "no_weight"})
               for e in torch.unique(ids).tolist()}
    out = torch.empty(m, top_k, n, dtype=torch.float64)
    for i in range(m):
        for j in range(top_k):
            e = int(ids[i, j])
            row = i if p["layer"] == "gate_up" else i * top_k + j
            y = weights[e] @ inp["a"][row].double()
            if p["layer"] == "down" and not bug.get("no_weight"):
                y = y * float(wts[i, j])
            out[i, j] = y
    return out


@pytest.mark.parametrize("dtype", [SYM, ZP])
def test_reference_matches_loop(dtype):
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, dtype, CPU, seed=3)
        ref = SPEC.reference(inp, case, dtype)
        assert ref.shape == SPEC.make_output(inp, case, dtype).shape
        assert torch.allclose(ref.double(), loop(inp, case), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [SYM, ZP])
def test_tolerance_rejects_planted_bugs(dtype):
    tol = SPEC.tolerance(dtype)
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, dtype, CPU, seed=5)
        ref = SPEC.reference(inp, case, dtype)
        assert compare(ref.bfloat16(), ref, tol).ok
        assert not compare(loop(inp, case, swap_nibbles=True).float(), ref, tol).ok
        if dtype == ZP:
            assert not compare(loop(inp, case, ignore_zp=True).float(), ref, tol).ok
        if case.params["layer"] == "down":
            assert not compare(loop(inp, case, no_weight=True).float(), ref, tol).ok


def test_group_rule_and_cases_from_model():
    assert wna16_group(4096, 192) == 64 and wna16_group(7168, 256) == 128
    cases = SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)
    assert cases[0].params == {"M": 1, "E": 128, "top_k": 8, "H": 4096, "I": 192, "G": 64, "tp": 8,
                               "layer": "gate_up"}
    assert {c.params["layer"] for c in cases} == {"gate_up", "down"}
    assert SPEC.cases(load_model("mamba2-2.7b")) == []
