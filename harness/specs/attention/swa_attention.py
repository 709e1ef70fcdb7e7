"""Sliding-window self-attention forward with a window centred on the query (catalog row 4: MaxLSB/flash-attn2
`FlashAttention.forward(..., attn_mode="sliding_window")`, the Gemma 3 local-attention row of the catalog).

Math, per batch b, head h and query position i of one sequence of T tokens (no KV cache, MHA: K/V have as many
heads as Q, the upstream has no GQA), with half-window w = W // 2:

    out[b, h, i] = softmax_{j : |i - j| <= w}(q[b, h, i] . k[b, h, j] * D^-0.5) @ v[b, h, j]

The window is two-sided (keys up to w positions before AND after the query), which is what the upstream
kernel and its own PyTorch reference (`src/multi_head_attention.py`: triu(-w) & tril(w)) compute; it is not
the causal left window of Gemma 3.  The scale is fixed at D^-0.5 (the upstream computes it from the head dim).

Shapes: q, k, v, out [B, H, T, D] contiguous, fp16 (the upstream's only dtype).
Cases: models with `attention.sliding_window` (Gemma 3): W = that window (so each query sees ~W keys, as a
Gemma local layer's query does), H = num_q_heads / TP, D = head_dim, B = 1 sequence of T = each prefill token
count.  Test shapes keep the upstream's limits (T a multiple of 32, D a power of two >= 16, 32 <= W <= T).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import attention_tolerance, torch_dtype

#: query rows per reference step: scores are [CHUNK, CHUNK + 2w] instead of [T, T]
REF_CHUNK = 512


def swa_dims(model: ModelShapes) -> dict[str, int] | None:
    keys = ("attention.num_q_heads", "attention.head_dim", "attention.sliding_window")
    if not all(model.has(k) for k in keys):
        return None
    return {"H": max(1, int(model.get("attention.num_q_heads")) // model.tp), "D": int(model.get("attention.head_dim")),
            "W": int(model.get("attention.sliding_window"))}


def swa_cases(model: ModelShapes, quick: bool) -> list[Case]:
    dims = swa_dims(model)
    if dims is None:
        return []
    return [Case(model.name, "prefill", {"B": 1, "T": t, **dims}) for t in model.tokens("prefill", quick=quick)
            if t >= dims["W"]]


def swa_test_cases() -> list[Case]:
    # W=40: w=20, (w + 1) % 16 != 0 (the upstream's two-diagonal branch); W=62: w=31, (w + 1) % 16 == 0
    return [Case("test", "test", {"B": 2, "H": 3, "T": 96, "D": 16, "W": 40}),
            Case("test", "test", {"B": 1, "H": 2, "T": 128, "D": 32, "W": 62})]


def swa_check_cases() -> list[Case]:
    # Gemma 3 head dim, window 256 on a 1024-token sequence (both window edges and the sequence ends inside)
    return [Case("check", "test", {"B": 1, "H": 4, "T": 1024, "D": 128, "W": 256})]


def swa_inputs(case: Case, dtype: str, kernel: str, device: torch.device, seed: int, with_grad_out: bool) -> Inputs:
    p = case.params
    dt = torch_dtype(dtype, kernel)
    g = torch.Generator(device=device).manual_seed(seed)
    shape = (p["B"], p["H"], p["T"], p["D"])
    # unit-normal q/k (scores ~ N(0, 1) after the D^-0.5 scale) and v, as the projections' outputs are
    q, k, v = (torch.randn(shape, generator=g, device=device, dtype=torch.float32).to(dt) for _ in range(3))
    out: Inputs = {"q": q, "k": k, "v": v, "window": p["W"], "sm_scale": 1.0 / math.sqrt(p["D"])}
    if with_grad_out:
        out["do"] = torch.randn(shape, generator=g, device=device, dtype=torch.float32).to(dt)
    return out


def window_ranges(t: int, half: int, chunk: int) -> list[tuple[int, int, int, int]]:
    """(q0, q1, k0, k1): each query chunk and the key span its windows cover."""
    return [(q0, min(t, q0 + chunk), max(0, q0 - half), min(t, q0 + chunk + half)) for q0 in range(0, t, chunk)]


def window_mask(q0: int, q1: int, k0: int, k1: int, half: int, device: torch.device) -> torch.Tensor:
    """True where key j is outside query i's window (|i - j| > half)."""
    qi = torch.arange(q0, q1, device=device)[:, None]
    kj = torch.arange(k0, k1, device=device)[None, :]
    return (qi - kj).abs() > half


def swa_forward_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, scale: float
                          ) -> torch.Tensor:
    """fp32 two-sided sliding-window attention of [B, H, T, D] tensors, one query chunk at a time (differentiable,
    so the backward spec takes its gradients with autograd)."""
    t = q.shape[2]
    half = window // 2
    outs = []
    for q0, q1, k0, k1 in window_ranges(t, half, REF_CHUNK):
        s = (q[:, :, q0:q1].float() @ k[:, :, k0:k1].float().transpose(-1, -2)) * scale
        s = s.masked_fill(window_mask(q0, q1, k0, k1, half, q.device), float("-inf"))
        outs.append(torch.softmax(s, dim=-1) @ v[:, :, k0:k1].float())
    return torch.cat(outs, dim=2)


def window_pairs(t: int, window: int) -> int:
    """(query, key) pairs inside the window over a sequence of t tokens."""
    half = window // 2
    return sum(min(t - 1, i + half) - max(0, i - half) + 1 for i in range(t))


class SwaAttentionSpec(KernelSpec):
    id = "swa_attention"
    category = "attention"
    catalog_rows = (4,)
    token_dim = 'T'
    title = "Sliding-window self-attention forward (two-sided window |i - j| <= W/2, MHA)"
    dtypes: ClassVar[tuple[str, ...]] = ("fp16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return swa_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return swa_test_cases()

    def check_cases(self) -> list[Case]:
        return swa_check_cases()

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        return swa_inputs(case, dtype, self.id, device, seed, with_grad_out=False)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        with exact_fp32():
            # one (batch, head) at a time keeps the fp32 scores of a 16k-token sequence small
            q, k, v = inputs["q"], inputs["k"], inputs["v"]
            out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
            for b in range(q.shape[0]):
                for h in range(q.shape[1]):
                    sl = (slice(b, b + 1), slice(h, h + 1))
                    out[sl] = swa_forward_reference(q[sl], k[sl], v[sl], inputs["window"], inputs["sm_scale"])
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        return 4.0 * window_pairs(p["T"], p["W"]) * p["B"] * p["H"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return 4.0 * p["B"] * p["H"] * p["T"] * p["D"] * torch_dtype(dtype, self.id).itemsize


SPEC = SwaAttentionSpec()
