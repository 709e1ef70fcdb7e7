"""Sliding-window self-attention backward (catalog row 5: MaxLSB/flash-attn2 `FlashAttention.backward`): the
gradients of swa_attention's output (two-sided window |i - j| <= W // 2, MHA, scale D^-0.5, see that spec)
with respect to q, k and v, given the output gradient dO.

    P = softmax_window(q k^T * s),  O = P v
    dv = P^T dO,  dP = dO v^T,  dS = P * (dP - rowsum(dO * O)),  dq = s * dS k,  dk = s * dS^T q

Inputs: q, k, v, do [B, H, T, D] fp16 contiguous.  What a flash backward needs from the forward (the output O
and the per-row log-sum-exp of the scaled scores) is each impl's own untimed set-up: it runs its forward in
prepare, as training keeps those tensors from the forward pass; only the backward is timed.
Output: one fp32 buffer [3, B, H, T, D] = (dq, dk, dv).  Reference: fp32 autograd of the chunked window math.
Cases and test shapes: as swa_attention.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import torch_dtype
from harness.specs.attention.swa_attention import (
    swa_cases,
    swa_check_cases,
    swa_forward_reference,
    swa_inputs,
    swa_test_cases,
    window_pairs,
)


def swa_backward_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, do: torch.Tensor, window: int,
                           scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dq, dk, dv) in fp32 by autograd through swa_forward_reference."""
    qf, kf, vf = (x.detach().float().requires_grad_(True) for x in (q, k, v))
    with torch.enable_grad():
        o = swa_forward_reference(qf, kf, vf, window, scale)
        dq, dk, dv = torch.autograd.grad(o, (qf, kf, vf), do.float())
    return dq, dk, dv


class SwaAttentionBwdSpec(KernelSpec):
    id = "swa_attention_bwd"
    category = "attention"
    catalog_rows = (5,)
    token_dim = 'T'
    title = "Sliding-window self-attention backward (dq, dk, dv from dO; two-sided window, MHA)"
    dtypes: ClassVar[tuple[str, ...]] = ("fp16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return swa_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return swa_test_cases()

    def check_cases(self) -> list[Case]:
        return swa_check_cases()

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        return swa_inputs(case, dtype, self.id, device, seed, with_grad_out=True)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q = inputs["q"]
        return torch.empty((3, *q.shape), dtype=torch.float32, device=q.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q, k, v, do = inputs["q"], inputs["k"], inputs["v"], inputs["do"]
        out = torch.empty((3, *q.shape), dtype=torch.float32, device=q.device)
        with exact_fp32():
            for b in range(q.shape[0]):
                for h in range(q.shape[1]):
                    sl = (slice(b, b + 1), slice(h, h + 1))
                    grads = swa_backward_reference(q[sl], k[sl], v[sl], do[sl], inputs["window"], inputs["sm_scale"])
                    for i, g in enumerate(grads):
                        out[i][sl] = g
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        if dtype == "fp16":
            # measured: the upstream under TRITON_INTERPRET on the test and check shapes, 2.9e-4..3.1e-4 for each of
            # dq, dk, dv (P and dS are rounded to fp16 before their GEMMs, O and the grads are stored in fp16); the
            # bound is the forward's fp16 attention bound plus margin for the longer fp16 chain
            return Tolerance(5e-3, "fp16 Q/K/V/dO, fp16 P and dS GEMM operands, fp32 accumulate, fp16 grads")
        return Tolerance(1e-4, "fp32 (TF32 may be used by tl.dot)")

    def flops(self, case: Case) -> float:
        # five GEMMs over the window (S recompute, dV, dP, dQ, dK) against the forward's two
        p = case.params
        return 10.0 * window_pairs(p["T"], p["W"]) * p["B"] * p["H"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        n = p["B"] * p["H"] * p["T"] * p["D"]
        return 4.0 * n * torch_dtype(dtype, self.id).itemsize + 3.0 * n * 4


SPEC = SwaAttentionBwdSpec()
