"""Gated linear attention, fused recurrent decode step (catalog row 24: fla `fused_recurrent_gla`, which now wraps
fla.ops.common.fused_recurrent.fused_recurrent / `fused_recurrent_fwd_kernel`; the catalog's
`fused_recurrent_gla_fwd_kernel` no longer exists).

Same math as gla_chunk, one token per request: S <- diag(exp(gk)) S + k v^T; o = scale S^T q.
Shapes: q, k, gk [1, N, H, K]; v [1, N, H, V]; h0 [N, H, K, V] fp32; cu_seqlens 0..N.  Named outputs: o [1, N, H, V]
and final_state [N, H, K, V] fp32 (the updated states, most of the traffic), both compared.
Model rows: shapes/gla-2.7b.yaml (decode, one token per sequence).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import gla_inputs, gla_reference, state_outputs, torch_dtype
from harness.specs.linear.gla_chunk import gla_dims


class GLARecurrentSpec(KernelSpec):
    id = "gla_recurrent"
    category = "linear"
    catalog_rows = (24,)
    token_dim = 'N'
    title = "Gated linear attention (GLA), fused recurrent decode step"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = gla_dims(model)
        if dims is None:
            return []
        return [Case(model.name, "decode", {"N": t, **dims}) for t in model.tokens("decode", quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"N": 3, "H": 2, "K": 8, "V": 6}),
                Case("test", "test", {"N": 1, "H": 1, "K": 4, "V": 5})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"N": 5, "H": 4, "K": 128, "V": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        return gla_inputs(p["N"], 1, p["H"], p["K"], p["V"], dtype, device, seed)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return state_outputs(inputs, dtype)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        o, final = gla_reference(inputs["q"], inputs["k"], inputs["v"], inputs["gk"], inputs["h0"],
                                 inputs["cu_seqlens"], inputs["scale"])
        return {"o": o, "final_state": final}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # fp32 state and arithmetic in the kernel; bf16 output rounding (~1.5e-3 relative RMS) remains; the fp32
        # state sees only fast exp and reordered fp32 arithmetic
        return {"o": Tolerance(5e-3, "bf16 output rounding of an fp32-state recurrence"),
                "final_state": Tolerance(1e-3, "fp32 state: fast exp and reordered fp32 arithmetic only")}

    def flops(self, case: Case) -> float:
        """Per request and head: decay (KV), k v^T update (2KV), S^T q (2KV)."""
        p = case.params
        return float(p["N"] * p["H"] * 5 * p["K"] * p["V"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        return float(elt * p["N"] * p["H"] * (3 * p["K"] + 2 * p["V"]) + 2 * 4 * p["N"] * p["H"] * p["K"] * p["V"])


SPEC = GLARecurrentSpec()
