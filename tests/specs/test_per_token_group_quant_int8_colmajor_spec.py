"""The column-major-scale INT8 group quant contract (row 70): the int8 group-quant math, s in SGLang's
column-major TMA-aligned layout ([H/G, ceil4(T)] storage viewed [T, H/G])."""

from __future__ import annotations

import torch

from harness.correctness import check_call, compare
from harness.specs.quantization.per_token_group_quant_int8_colmajor import SPEC

CPU = torch.device("cpu")


def quant_colmajor(x: torch.Tensor, group: int, s: torch.Tensor, rounding: bool = False) -> torch.Tensor:
    """q [T, H] int8 from a per-group loop; writes the scales into `s` (any strides) as the kernel does."""
    t, h = x.shape
    q = torch.empty(t, h, dtype=torch.int8)
    for i in range(t):
        for g in range(h // group):
            v = x[i, g * group:(g + 1) * group].float()
            sc = torch.clamp(v.abs().max(), min=1e-10) / 127.0
            y = (v / sc).clamp(-128, 127)
            q[i, g * group:(g + 1) * group] = (torch.round(y) if rounding else torch.trunc(y)).to(torch.int8)
            s[i, g] = sc
    return q


def test_scale_buffer_is_sglangs_tma_aligned_colmajor_layout():
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=1)
        t, h, g = case.params["T"], case.params["H"], case.params["G"]
        s = SPEC.make_output(inp, case, "bf16")["s"]
        t4 = (t + 3) // 4 * 4
        # create_per_token_group_quant_fp8_output_scale(column_major_scales=True, scale_tma_aligned=True)
        assert s.shape == (t, h // g) and s.stride() == (1, t4) and s.untyped_storage().nbytes() == 4 * t4 * (h // g)


def test_reference_matches_colmajor_loop_and_rejects_rounding():
    tol = SPEC.tolerance("bf16")
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=2)
        ref = SPEC.reference(inp, case, "bf16")
        group = case.params["G"]
        out = SPEC.make_output(inp, case, "bf16")
        res = check_call(lambda: out["q"].copy_(quant_colmajor(inp["x"], group, out["s"])), out, ref, tol)  # noqa: B023
        assert res.ok, res.reason
        assert torch.equal(out["q"], ref["q"]) and torch.equal(out["s"], ref["s"])
        if case.params["T"] > 4:
            q = quant_colmajor(inp["x"], group, out["s"], rounding=True)
            assert not compare({"q": q, "s": out["s"]}, ref, tol).ok
    assert SPEC.catalog_rows == (70,) and SPEC.id != "per_token_group_quant_int8"
