"""RWKV-6 fused recurrent forward (catalog row 27: fla `fused_recurrent_rwkv6`, fla/ops/rwkv6/fused_recurrent.py,
kernel `fused_recurrent_rwkv6_fwd_kernel`).

Per sequence and head, state S [K, V], data-dependent log decay w_t [K], bonus u [K]:

    o_t = scale * r_t^T (S_{t-1} + diag(u) k_t v_t^T)
    S_t = diag(exp(w_t)) S_{t-1} + k_t v_t^T

Shapes (varlen): N sequences of T tokens, L = N * T; r, k, w [1, L, H, K]; v [1, L, H, V]; u [H, K];
h0 [N, H, K, V] fp32; cu_seqlens [N + 1].  Named outputs: o [1, L, H, V] and final_state [N, H, K, V] fp32 (each
sequence's last state), both compared.
Model rows: shapes/rwkv6-7b-finch.yaml (decode, one token per sequence).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import cu_seqlens, generator, randn, torch_dtype


def rwkv_dims(model: ModelShapes, kind: str) -> dict[str, int] | None:
    """Per-GPU heads / head dim of an RWKV model (linear_attention.kind == kind), else None."""
    if model.get("linear_attention.kind", None) != kind:
        return None
    h = model.get("linear_attention.num_heads")
    if h % model.tp:
        return None
    return {"H": h // model.tp, "K": model.get("linear_attention.head_k_dim"),
            "V": model.get("linear_attention.head_v_dim")}


class RWKV6RecurrentSpec(KernelSpec):
    id = "rwkv6_recurrent"
    category = "linear"
    catalog_rows = (27,)
    token_dim = 'T'
    title = "RWKV-6 fused recurrent forward (data-dependent decay, bonus u)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = rwkv_dims(model, "rwkv6")
        if dims is None:
            return []
        return [Case(model.name, "decode", {"T": 1, "N": t, **dims}) for t in model.tokens("decode", quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "N": 2, "H": 2, "K": 8, "V": 6}),
                Case("test", "test", {"T": 1, "N": 3, "H": 1, "K": 4, "V": 5})]

    def check_cases(self) -> list[Case]:
        # RWKV-6 head size 64; two sequences of 40 tokens
        return [Case("check", "test", {"T": 40, "N": 2, "H": 4, "K": 64, "V": 64})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        n, t, h, kd, vd = p["N"], p["T"], p["H"], p["K"], p["V"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        length = n * t
        return {
            "r": randn((1, length, h, kd), gen, device).to(dt),
            "k": randn((1, length, h, kd), gen, device).to(dt),
            "v": randn((1, length, h, vd), gen, device).to(dt),
            # fla's RWKV-6 tests: w = logsigmoid(N(0, 1)) (log decay < 0), u ~ N(0, 1)
            "w": F.logsigmoid(randn((1, length, h, kd), gen, device)).to(dt),
            "u": randn((h, kd), gen, device).to(dt),  # a model-dtype parameter in RWKV-6 layers
            "h0": randn((n, h, kd, vd), gen, device),
            "cu_seqlens": cu_seqlens(n, t, device),
            "scale": kd ** -0.5,
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        v = inputs["v"]
        return {"o": torch.empty(v.shape, dtype=torch_dtype(dtype), device=v.device),
                "final_state": torch.empty(inputs["h0"].shape, dtype=torch.float32, device=v.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        r, k, v, w = (inputs[x][0].float() for x in ("r", "k", "v", "w"))
        u = inputs["u"].float()
        out = torch.empty(v.shape, dtype=torch.float32, device=v.device)
        finals = torch.empty(inputs["h0"].shape, dtype=torch.float32, device=v.device)
        bounds = inputs["cu_seqlens"].tolist()
        for n in range(len(bounds) - 1):
            s = inputs["h0"][n].float().clone()  # [H, K, V]
            for t in range(bounds[n], bounds[n + 1]):
                kv = k[t][:, :, None] * v[t][:, None, :]
                out[t] = inputs["scale"] * torch.einsum("hk,hkv->hv", r[t], s + u[:, :, None] * kv)
                s = torch.exp(w[t])[:, :, None] * s + kv
            finals[n] = s
        return {"o": out[None], "final_state": finals}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # fp32 state and arithmetic in the kernel, bf16 inputs read exactly by the reference: bf16 output rounding;
        # the fp32 final state sees only fast exp and reordered fp32 arithmetic
        return {"o": Tolerance(5e-3, "bf16 output rounding of an fp32-state recurrence"),
                "final_state": Tolerance(1e-3, "fp32 state: fast exp and reordered fp32 arithmetic only")}

    def flops(self, case: Case) -> float:
        """Per token and head: bonus term (2KV), r^T (S + .) (2KV), decay + update (3KV)."""
        p = case.params
        return float(p["N"] * p["T"] * p["H"] * 7 * p["K"] * p["V"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        length = p["N"] * p["T"]
        return float(elt * length * p["H"] * (3 * p["K"] + 2 * p["V"]) + 2 * 4 * p["N"] * p["H"] * p["K"] * p["V"]
                     + 4 * p["H"] * p["K"])


SPEC = RWKV6RecurrentSpec()
