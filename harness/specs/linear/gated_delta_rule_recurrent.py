"""Fused recurrent gated delta rule, decode step (catalog row 21: fla `fused_recurrent_gated_delta_rule`; the same
op vendored by vLLM 0.33.0 and SGLang 0.5.23 under their flash_linear_attention / fla folders).

The decode path of Gated DeltaNet (Qwen3-Next): N requests, one new token each, every request with its own
state S [HV, K, V].  Per value head (same math as gated_delta_rule_chunk):

    S <- exp(g) S;   u = beta (v - S^T k);   S <- S + k u^T;   o = scale * S^T q,   scale = K^-0.5

Shapes (varlen packing as serving passes them, one token per sequence): q, k [1, N, H, K] (L2-normalized);
v [1, N, HV, V]; g [1, N, HV] fp32 (log decay); beta [1, N, HV]; h0 [N, HV, K, V] fp32;
cu_seqlens [N + 1] = 0..N.  Named outputs: o [1, N, HV, V] (model dtype) and final_state [N, HV, K, V] fp32, the N
updated states (that write and the state read are most of the traffic), both compared.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import (
    cu_seqlens,
    gated_delta_rule_reference,
    gdn_heads,
    generator,
    l2_normalized,
    randn,
    slow_log_decay,
    state_outputs,
    token_cases,
    torch_dtype,
    unit_gate,
)


class GatedDeltaRuleRecurrentSpec(KernelSpec):
    id = "gated_delta_rule_recurrent"
    category = "linear"
    catalog_rows = (21,)
    token_dim = 'N'
    title = "Gated delta rule, fused recurrent decode step (Gated DeltaNet decode)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = gdn_heads(model)
        if dims is None:
            return []
        return token_cases(model, "decode", quick, "N", dims)

    def test_cases(self) -> list[Case]:
        return [
            Case("test", "test", {"N": 3, "H": 1, "HV": 2, "K": 8, "V": 6}),
            Case("test", "test", {"N": 1, "H": 2, "HV": 2, "K": 4, "V": 5}),
        ]

    def check_cases(self) -> list[Case]:
        # odd batch, GVA 2 -> 4 heads, head dims 128 as Qwen3-Next
        return [Case("check", "test", {"N": 5, "H": 2, "HV": 4, "K": 128, "V": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        n, h, hv, kd, vd = p["N"], p["H"], p["HV"], p["K"], p["V"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        return {
            "q": l2_normalized((1, n, h, kd), gen, device).to(dt),
            "k": l2_normalized((1, n, h, kd), gen, device).to(dt),
            "v": randn((1, n, hv, vd), gen, device).to(dt),
            "g": slow_log_decay((1, n, hv), gen, device),
            "beta": unit_gate((1, n, hv), gen, device).to(dt),
            # a state of the size the layer builds (S^T k ~ v for unit keys), not 10x it: keeps the tokens' share
            # of o visible next to the initial state's
            "h0": randn((n, hv, kd, vd), gen, device) * kd ** -0.5,
            "cu_seqlens": cu_seqlens(n, 1, device),
            "scale": kd ** -0.5,
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return state_outputs(inputs, dtype)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        o, final = gated_delta_rule_reference(inputs["q"], inputs["k"], inputs["v"], inputs["g"], inputs["beta"],
                                              inputs["h0"], inputs["cu_seqlens"], inputs["scale"])
        return {"o": o, "final_state": final}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # state and arithmetic stay fp32 in the kernel; only the bf16 output rounding (~2e-3 relative RMS)
        # remains, so 5e-3 (fla test_gated_delta's fused_recurrent bound is of that order); a dropped gate,
        # beta or state term gives > 1e-1.  The fp32 state sees only reordered fp32 sums and fast exp: 1e-3.
        return {"o": Tolerance(5e-3, "bf16 output rounding of an fp32-state recurrence (fla test_gated_delta)"),
                "final_state": Tolerance(1e-3, "fp32 state: reordered fp32 sums and fast exp only")}

    def flops(self, case: Case) -> float:
        """Per request and value head: decay (KV), S^T k (2KV), rank-1 update (2KV), S^T q (2KV)."""
        p = case.params
        return float(p["N"] * p["HV"] * 7 * p["K"] * p["V"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        n = p["N"]
        elt = torch_dtype(dtype).itemsize
        qk = 2 * n * p["H"] * p["K"] * elt
        v_and_o = 2 * n * p["HV"] * p["V"] * elt
        gates = n * p["HV"] * (4 + elt)
        states = 2 * n * p["HV"] * p["K"] * p["V"] * 4  # state read and written back, fp32
        return float(qk + v_and_o + gates + states)


SPEC = GatedDeltaRuleRecurrentSpec()
