"""Shared pieces of the activation specs: gate-up rows from a model, random pre-activations, the SiLU-and-mul
math in the upstream kernels' precision order."""

from __future__ import annotations

import torch

from harness.shapes import ModelShapes


def gate_up_rows(model: ModelShapes, quick: bool) -> list[tuple[str, int, int]]:
    """(regime, rows, N) where rows x [gate | up] of width 2N enter SiLU-and-mul: MoE models give
    rows = tokens * top_k and N = moe.intermediate_size / tp (the fused-MoE intermediate); dense models give
    rows = tokens and N = mlp.intermediate_size / tp."""
    if model.has("moe.intermediate_size") and model.has("moe.top_k"):
        n, per_token = int(model.get("moe.intermediate_size")) // model.tp, int(model.get("moe.top_k"))
    elif model.has("mlp.intermediate_size"):
        n, per_token = int(model.get("mlp.intermediate_size")) // model.tp, 1
    else:
        return []
    return [(regime, t * per_token, n) for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick)]


def random_gate_up(rows: int, n: int, device: torch.device, seed: int) -> torch.Tensor:
    """bf16 [rows, 2N] gate-up GEMM outputs: N(0, 2^2) so SiLU sees both its linear and its saturating range."""
    g = torch.Generator(device=device).manual_seed(seed)
    return (2.0 * torch.randn(rows, 2 * n, generator=g, device=device)).to(torch.bfloat16)


def silu_mul_bf16(x: torch.Tensor) -> torch.Tensor:
    """silu(gate) rounded to bf16, times up, rounded to bf16 (both upstream kernels round the activated gate to
    the input dtype before the multiply); returned in fp32."""
    n = x.shape[1] // 2
    g = x[:, :n].float()
    act = (g / (1.0 + torch.exp(-g))).to(torch.bfloat16).float()
    return (act * x[:, n:].float()).to(torch.bfloat16).float()
