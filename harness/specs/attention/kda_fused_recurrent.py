"""KDA (Kimi Delta Attention) recurrent step for decode (catalog row 6, fla `fused_recurrent_kda_fwd_kernel`).

Math, per sequence and value head (fla `naive_recurrent_kda`, with in-kernel L2 norm of q and k as Kimi
Linear's decode path runs it), state S [K, V] fp32, for each token t:

    q_t <- q_t / sqrt(|q_t|^2 + 1e-6),  k_t <- k_t / sqrt(|k_t|^2 + 1e-6)
    S <- diag(exp(g_t)) S
    S <- S + beta_t k_t (v_t - S^T k_t)^T
    o_t = (K^-0.5 q_t)^T S

Shapes: q, k [B, T, H, K]; v [B, T, HV, V] (bf16/fp16); g [B, T, HV, K] fp32 log-decays (< 0, from the KDA gate);
beta [B, T, HV] in (0, 1); initial_state [B, HV, K, V] fp32.  Named outputs: o [B, T, HV, V] (model dtype) and
final_state [B, HV, K, V] fp32 (the state after the last token; its read and write are most of the traffic),
both compared.  H = HV = linear_attention.num_heads / TP, K = head_k_dim,
V = head_v_dim; decode regime: B from the decode token counts, T = 1.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import torch_dtype
from harness.specs.attention.kda_gate import kda_heads

L2_EPS = 1e-6


def kda_inputs(b: int, t: int, h: int, hv: int, k: int, v: int, dt: torch.dtype, seed: int, device: torch.device
               ) -> Inputs:
    """Random KDA inputs [B, T, ...] in Kimi Linear's domains (shared by kda_fused_recurrent and kda_chunk)."""
    g = torch.Generator(device=device).manual_seed(seed)

    def rn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, device=device)

    a = torch.log(1.0 + 15.0 * torch.rand(hv, generator=g, device=device))  # A_log as in Kimi's init
    # gate output: -exp(A_log) * softplus(x + dt_bias), dt_bias ~ softplus^-1(1e-3..1e-1) -> ~ -7..-2
    decay = -a.exp().view(1, 1, hv, 1) * torch.nn.functional.softplus(rn(b, t, hv, k) - 4.5)
    return {
        "q": rn(b, t, h, k).to(dt), "k": rn(b, t, h, k).to(dt), "v": rn(b, t, hv, v).to(dt),
        "g": decay.contiguous(),
        "beta": torch.sigmoid(rn(b, t, hv)).to(dt),
        # a state accumulated over many tokens of unit-norm keys: entries ~ |v| / sqrt(K)
        "initial_state": rn(b, hv, k, v) / math.sqrt(k),
        "scale": 1.0 / math.sqrt(k),
    }


def kda_recurrence(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
                   state: torch.Tensor, scale: float) -> torch.Tensor:
    """The docstring's recurrence in fp32 (TF32 off), token by token, batched over [B, HV]; -> o [B, T, HV, V]."""
    return kda_recurrence_with_state(q, k, v, g, beta, state, scale)[0]


def kda_recurrence_with_state(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                              beta: torch.Tensor, state: torch.Tensor, scale: float
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """kda_recurrence, also returning the final state [B, HV, K, V] fp32."""
    q, k, v, g, beta = q.float(), k.float(), v.float(), g.float(), beta.float()
    group = v.shape[2] // q.shape[2]
    q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + L2_EPS)
    k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + L2_EPS)
    q = q.repeat_interleave(group, dim=2) * scale
    k = k.repeat_interleave(group, dim=2)
    s = state.float().clone()
    out = torch.empty(v.shape, dtype=torch.float32, device=v.device)
    with exact_fp32():
        for t in range(q.shape[1]):
            s = s * g[:, t, :, :, None].exp()
            pred = torch.einsum("bhk,bhkv->bhv", k[:, t], s)
            s = s + torch.einsum("bhk,bhv->bhkv", beta[:, t, :, None] * k[:, t], v[:, t] - pred)
            out[:, t] = torch.einsum("bhk,bhkv->bhv", q[:, t], s)
    return out, s


class KdaFusedRecurrentSpec(KernelSpec):
    id = "kda_fused_recurrent"
    category = "attention"
    catalog_rows = (6,)
    token_dim = 'T'
    title = "KDA recurrent decode step (gated delta rule with per-channel decay, fp32 state)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        hk = kda_heads(model)
        if hk is None or not model.has("linear_attention.head_v_dim"):
            return []
        v = int(model.get("linear_attention.head_v_dim"))
        return [Case(model.name, "decode", {"B": b, "T": 1, "H": hk[0], "HV": hk[0], "K": hk[1], "V": v})
                for b in model.tokens("decode", quick=quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 2, "T": 3, "H": 2, "HV": 2, "K": 16, "V": 24}),
                Case("test", "test", {"B": 1, "T": 1, "H": 1, "HV": 1, "K": 8, "V": 8})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 5, "T": 1, "H": 4, "HV": 4, "K": 128, "V": 128}),
                Case("check", "test", {"B": 2, "T": 7, "H": 2, "HV": 2, "K": 128, "V": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        return kda_inputs(p["B"], p["T"], p["H"], p["HV"], p["K"], p["V"], torch_dtype(dtype, self.id), seed, device)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return {"o": torch.empty_like(inputs["v"]), "final_state": torch.empty_like(inputs["initial_state"])}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        o, final = kda_recurrence_with_state(inputs["q"], inputs["k"], inputs["v"], inputs["g"], inputs["beta"],
                                             inputs["initial_state"], inputs["scale"])
        return {"o": o, "final_state": final}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # the state sees the same (exactly representable) inputs and only reordered fp32 sums / fast exp
        state = Tolerance(1e-3, "fp32 state: reordered fp32 sums and fast exp only")
        if dtype == "bf16":
            return {"o": Tolerance(1e-2, "bf16 q/k/v/beta, fp32 state and math, bf16 output (unit roundoff 2^-8)"),
                    "final_state": state}
        return {"o": Tolerance(3e-3, "fp16 q/k/v/beta, fp32 state and math, fp16 output (unit roundoff 2^-11)"),
                "final_state": state}

    def flops(self, case: Case) -> float:
        p = case.params
        # per token and value head: decay (K*V), S^T k (2KV), rank-1 update (2KV), readout (2KV)
        return 7.0 * p["B"] * p["T"] * p["HV"] * p["K"] * p["V"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        b, t, h, hv, k, v = p["B"], p["T"], p["H"], p["HV"], p["K"], p["V"]
        tokens = b * t * (2 * h * k * elt + 2 * hv * v * elt + hv * k * 4 + hv * elt)
        return tokens + 2.0 * b * hv * k * v * 4  # state read and written once


SPEC = KdaFusedRecurrentSpec()
