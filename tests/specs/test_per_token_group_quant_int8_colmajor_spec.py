"""The column-major-scale INT8 group quant contract (row 70): the int8 group-quant math, a layout-blind epilogue."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.specs.quantization._common import dequantize_groups_into
from harness.specs.quantization.per_token_group_quant_int8_colmajor import SPEC

CPU = torch.device("cpu")


def quant_colmajor(x: torch.Tensor, group: int, rounding: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """q [T, H] int8 and s as a [T, H / G] view of column-major (TMA-aligned) storage, from a per-group loop."""
    t, h = x.shape
    storage = torch.full((h // group, (t + 3) // 4 * 4), float("nan"))
    s = storage.t()[:t]
    q = torch.empty(t, h, dtype=torch.int8)
    for i in range(t):
        for g in range(h // group):
            v = x[i, g * group:(g + 1) * group].float()
            sc = torch.clamp(v.abs().max(), min=1e-10) / 127.0
            y = (v / sc).clamp(-128, 127)
            q[i, g * group:(g + 1) * group] = (torch.round(y) if rounding else torch.trunc(y)).to(torch.int8)
            s[i, g] = sc
    return q, s


def test_reference_matches_colmajor_loop_and_rejects_rounding():
    tol = SPEC.tolerance("bf16")
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
        ref = SPEC.reference(inp, case, "bf16")
        group = case.params["G"]
        out = SPEC.make_output(inp, case, "bf16")
        q, s = quant_colmajor(inp["x"], group)
        assert not s.is_contiguous()
        dequantize_groups_into(out, q, s, group)
        assert torch.allclose(out, ref, rtol=1e-6, atol=0)
        if case.params["T"] > 4:
            q, s = quant_colmajor(inp["x"], group, rounding=True)
            dequantize_groups_into(out, q, s, group)
            assert not compare(out, ref, tol).ok
    assert SPEC.catalog_rows == (70,) and SPEC.id != "per_token_group_quant_int8"
