"""KDA (Kimi Delta Attention) forget gate (catalog row 8, fla `kda_gate_fwd_kernel` via `fused_kda_gate`).

Math, per token t, head h, key channel k (fla `naive_kda_gate`, without lower_bound as Kimi Linear runs it):

    out[t, h, k] = -exp(A_log[h]) * softplus(g[t, h, k] + dt_bias[h * K + k])       (log-space decay, < 0)

Shapes: g [T, H, K] (the gate projection output, bf16/fp16); A_log [H] fp32; dt_bias [H * K] fp32;
out [T, H, K] fp32.  H = linear_attention.num_heads / TP, K = head_k_dim; T from decode and prefill tokens.
Parameter domains follow Kimi Linear's init: A_log = log(U(1, 16)), dt_bias = softplus^-1(dt) with
dt = exp(U(log 1e-3, log 1e-1)) (Mamba-style), g ~ N(0, 1).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.attention._common import torch_dtype


def kda_heads(model: ModelShapes) -> tuple[int, int] | None:
    """(per-GPU KDA heads, head_k_dim), or None when the model has no KDA layers."""
    if model.get("linear_attention.kind", None) != "kda":
        return None
    if not (model.has("linear_attention.num_heads") and model.has("linear_attention.head_k_dim")):
        return None
    heads = max(1, int(model.get("linear_attention.num_heads")) // model.tp)
    return heads, int(model.get("linear_attention.head_k_dim"))


class KdaGateSpec(KernelSpec):
    id = "kda_gate"
    category = "attention"
    catalog_rows = (8,)
    token_dim = 'T'
    title = "KDA forget gate: -exp(A_log) * softplus(g + dt_bias)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        hk = kda_heads(model)
        if hk is None:
            return []
        out = []
        for regime in ("decode", "prefill"):
            for t in model.tokens(regime, quick=quick):
                out.append(Case(model.name, regime, {"T": t, "H": hk[0], "K": hk[1]}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "H": 3, "K": 20}), Case("test", "test", {"T": 1, "H": 2, "K": 8})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 77, "H": 4, "K": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        t, h, k = p["T"], p["H"], p["K"]
        gate = torch.randn(t, h, k, generator=g, device=device).to(dt)
        a_log = torch.log(1.0 + 15.0 * torch.rand(h, generator=g, device=device))
        lo, hi = math.log(1e-3), math.log(1e-1)
        dt_val = torch.exp(lo + (hi - lo) * torch.rand(h * k, generator=g, device=device))
        dt_bias = dt_val + torch.log(-torch.expm1(-dt_val))  # inverse softplus
        return {"g": gate, "A_log": a_log, "dt_bias": dt_bias}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(inputs["g"].shape, dtype=torch.float32, device=inputs["g"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        g = inputs["g"].double()
        h, k = g.shape[-2:]
        x = g + inputs["dt_bias"].double().view(h, k)
        return (-inputs["A_log"].double().exp().view(h, 1) * torch.nn.functional.softplus(x)).float()

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 elementwise math on exactly representable inputs; only exp/log approximations remain (~1e-6)
        return Tolerance(1e-4, "fp32 elementwise exp/softplus on bf16/fp16 inputs, fp32 output")

    def flops(self, case: Case) -> float:
        p = case.params
        # add, softplus (exp, add, log), multiply per element
        return 5.0 * p["T"] * p["H"] * p["K"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        n = p["T"] * p["H"] * p["K"]
        return n * (elt + 4.0) + p["H"] * 4 + p["H"] * p["K"] * 4


SPEC = KdaGateSpec()
