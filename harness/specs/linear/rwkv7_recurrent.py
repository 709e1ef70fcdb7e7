"""RWKV-7 fused recurrent forward (catalog row 28: fla `fused_recurrent_rwkv7_fwd_kernel`,
fla/ops/rwkv7/fused_recurrent.py).  The public `fused_recurrent_rwkv7` now routes to the generalized DPLR delta
rule kernel; the catalog's kernel is reached through the same file's `fused_mul_recurrent_rwkv7`, which the
adapter calls.

Per sequence and head, state S [K, V], log decay w_t [K] (RWKV-7: w = -0.6065 sigmoid(x)), normalized key kk_t,
in-context rate a_t in (0, 1):

    S_t = diag(exp(w_t)) S_{t-1} - (kk_t * a_t) (kk_t^T S_{t-1}) + k_t v_t^T
    o_t = scale * S_t^T r_t

Shapes (varlen): r, w, k, kk, a [1, L, H, K]; v [1, L, H, V]; h0 [N, H, K, V] fp32; cu_seqlens [N + 1];
named outputs o [1, L, H, V] and final_state [N, H, K, V] fp32 (each sequence's last state), both compared.  Model
rows: shapes/rwkv7-1.5b-world.yaml (decode, one token per sequence).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import cu_seqlens, generator, randn, torch_dtype, unit_gate
from harness.specs.linear.rwkv6_recurrent import rwkv_dims

W_SCALE = math.exp(-0.5)  # RWKV-7: w = -exp(-0.5) * sigmoid(w0 + lora(x)), so exp(w) in (0.545, 1)


class RWKV7RecurrentSpec(KernelSpec):
    id = "rwkv7_recurrent"
    category = "linear"
    catalog_rows = (28,)
    token_dim = 'T'
    title = "RWKV-7 fused recurrent forward (diagonal-plus-low-rank state transition)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = rwkv_dims(model, "rwkv7")
        if dims is None:
            return []
        return [Case(model.name, "decode", {"T": 1, "N": t, **dims}) for t in model.tokens("decode", quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "N": 2, "H": 2, "K": 8, "V": 6}),
                Case("test", "test", {"T": 1, "N": 3, "H": 1, "K": 4, "V": 5})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 40, "N": 2, "H": 4, "K": 64, "V": 64})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        n, t, h, kd, vd = p["N"], p["T"], p["H"], p["K"], p["V"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        length = n * t
        shape_k = (1, length, h, kd)
        return {
            "r": randn(shape_k, gen, device).to(dt),
            "w": (-W_SCALE * unit_gate(shape_k, gen, device)).to(dt),
            "k": randn(shape_k, gen, device).to(dt),
            "v": randn((1, length, h, vd), gen, device).to(dt),
            "kk": F.normalize(randn(shape_k, gen, device), dim=-1).to(dt),
            "a": unit_gate(shape_k, gen, device).to(dt),
            "h0": randn((n, h, kd, vd), gen, device),
            "cu_seqlens": cu_seqlens(n, t, device),
            "scale": kd ** -0.5,
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        v = inputs["v"]
        return {"o": torch.empty(v.shape, dtype=torch_dtype(dtype), device=v.device),
                "final_state": torch.empty(inputs["h0"].shape, dtype=torch.float32, device=v.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        r, w, k, v, kk, a = (inputs[x][0].float() for x in ("r", "w", "k", "v", "kk", "a"))
        out = torch.empty(v.shape, dtype=torch.float32, device=v.device)
        finals = torch.empty(inputs["h0"].shape, dtype=torch.float32, device=v.device)
        bounds = inputs["cu_seqlens"].tolist()
        for n in range(len(bounds) - 1):
            s = inputs["h0"][n].float().clone()  # [H, K, V]
            for t in range(bounds[n], bounds[n + 1]):
                removal = torch.einsum("hk,hkv->hv", kk[t], s)  # kk^T S
                s = (torch.exp(w[t])[:, :, None] * s - (kk[t] * a[t])[:, :, None] * removal[:, None, :]
                     + k[t][:, :, None] * v[t][:, None, :])
                out[t] = inputs["scale"] * torch.einsum("hk,hkv->hv", r[t], s)
            finals[n] = s
        return {"o": out[None], "final_state": finals}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # the fp32 final state sees only fast exp and reordered fp32 arithmetic
        return {"o": Tolerance(5e-3, "bf16 output rounding of an fp32-state recurrence"),
                "final_state": Tolerance(1e-3, "fp32 state: fast exp and reordered fp32 arithmetic only")}

    def flops(self, case: Case) -> float:
        """Per token and head: decay (KV), kk^T S (2KV), rank-1 removal (2KV), k v^T (2KV), S^T r (2KV)."""
        p = case.params
        return float(p["N"] * p["T"] * p["H"] * 9 * p["K"] * p["V"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        length = p["N"] * p["T"]
        return float(elt * length * p["H"] * (5 * p["K"] + 2 * p["V"]) + 2 * 4 * p["N"] * p["H"] * p["K"] * p["V"])


SPEC = RWKV7RecurrentSpec()
