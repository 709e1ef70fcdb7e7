"""RWKV-4 WKV, fused recurrent forward (catalog row 29: fla `fused_recurrent_rwkv4`,
fla/ops/rwkv4/fused_recurrent.py, kernel `fused_recurrent_rwkv4_forward_kernel`).

Channel-wise (not per head).  With decay w' = -exp(w) and bonus u per channel, and the running numerator /
denominator A, B (carried as the numerically stable triple alpha = A e^-eps, beta = B e^-eps, eps):

    wkv_t = (A_{t-1} + e^{u + k_t} v_t) / (B_{t-1} + e^{u + k_t})
    A_t = e^{w'} A_{t-1} + e^{k_t} v_t,     B_t = e^{w'} B_{t-1} + e^{k_t}

Shapes: w, u [C] fp32; k, v [B, T, C]; state [B, 3, 1, C] fp32 (alpha, beta, eps); out wkv [B, T, C].  The launcher
also returns the last state (and its kernel writes the state of every step, kept for the backward pass).
Model rows: shapes/rwkv4-3b-pile.yaml (prefill, one sequence).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import generator, randn, torch_dtype


class RWKV4RecurrentSpec(KernelSpec):
    id = "rwkv4_recurrent"
    category = "linear"
    catalog_rows = (29,)
    token_dim = 'T'
    title = "RWKV-4 WKV fused recurrent forward (channel-wise, stabilized)"
    dtypes: ClassVar[tuple[str, ...]] = ("fp32",)  # the RWKV-4 WKV runs in fp32 (its state is exp-scaled)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if model.get("linear_attention.kind", None) != "rwkv4":
            return []
        c = model.get("hidden_size")
        return [Case(model.name, "prefill", {"B": 1, "T": t, "C": c}) for t in model.tokens("prefill", quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 2, "T": 7, "C": 5}), Case("test", "test", {"B": 1, "T": 1, "C": 3})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 3, "T": 50, "C": 600})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        b, t, c = p["B"], p["T"], p["C"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        beta = 0.5 + torch.rand((b, 1, c), generator=gen, device=device)  # a positive running denominator
        state = torch.cat([beta * randn((b, 1, c), gen, device), beta, randn((b, 1, c), gen, device)], dim=1)
        return {
            "w": randn((c,), gen, device) - 1.0,  # time_decay: e^{-exp(w)} spread over (0, 1)
            "u": randn((c,), gen, device),  # time_first
            "k": randn((b, t, c), gen, device).to(dt),
            "v": randn((b, t, c), gen, device).to(dt),
            "state": state[:, :, None, :].contiguous(),  # [B, 3, 1, C]
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(inputs["k"].shape, dtype=torch_dtype(dtype), device=inputs["k"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """fp64, in the plain (unstabilized) A / B form: exact for the test's moderate exponents."""
        k, v = inputs["k"].double(), inputs["v"].double()
        decay = torch.exp(-torch.exp(inputs["w"].double()))
        eu = torch.exp(inputs["u"].double())
        st = inputs["state"][:, :, 0].double()
        num, den = st[:, 0] * torch.exp(st[:, 2]), st[:, 1] * torch.exp(st[:, 2])
        out = torch.empty_like(k)
        for t in range(k.shape[1]):
            ek = torch.exp(k[:, t])
            out[:, t] = (num + eu * ek * v[:, t]) / (den + eu * ek)
            num, den = decay * num + ek * v[:, t], decay * den + ek
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 exps and a ratio per step; the stabilized and plain forms agree to ~1e-6 relative
        return Tolerance(1e-4, "fp32 stabilized recurrence vs fp64 plain form")

    def flops(self, case: Case) -> float:
        """Per token and channel: ~20 (3 exps counted as 1 each, max, 2 fma pairs for wkv and state, division)."""
        p = case.params
        return float(p["B"] * p["T"] * p["C"] * 20)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        # k, v read and wkv written per token; state [B, 3, 1, C] read once (the launcher's per-step and last
        # states are not in the contract); w, u once
        return float(3 * p["B"] * p["T"] * p["C"] * elt + 3 * p["B"] * p["C"] * 4 + 2 * p["C"] * 4)


SPEC = RWKV4RecurrentSpec()
