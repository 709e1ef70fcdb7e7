"""Routing metadata shared by every fused-MoE impl: the block-aligned sort of (token, k) slots by expert.

This is the contract's `moe_align_block_size` (catalog row 44 is its own kernel): it is computed in each
impl's untimed `prepare`, with that impl's own BLOCK_SIZE_M, so the fused-MoE timed region is the same for
every provider: gate-up GEMM, SiLU-and-mul, down GEMM with top-k weighting, top-k reduction.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.shapes import ModelShapes
from harness.spec import Case


def token_expert_cases(model: ModelShapes, quick: bool, **extra: Any) -> list[Case]:
    """Cases of the per-token MoE kernels (routing, permute, gather): every decode and prefill token count T with
    the model's E, top_k and hidden size H, plus `extra` dims; [] for a dense model."""
    if not model.has("moe"):
        return []
    dims = {"E": int(model.get("moe.num_experts")), "top_k": int(model.get("moe.top_k")),
            "H": int(model.get("hidden_size")), **extra}
    return [Case(model.name, regime, {"T": t, **dims})
            for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick)]


def align_block_size(
    topk_ids: torch.Tensor, num_experts: int, block_m: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort flattened (token, k) slots by expert and pad each expert's run to a multiple of `block_m`.

    Returns (sorted_token_ids [total] int32, expert_ids [total // block_m] int32, num_tokens_post_padded [1] int32)
    in vLLM/SGLang's layout: slot s = token * top_k + k; padding entries hold M * top_k (one past the last
    slot); experts with no tokens get no block.  Slots of one expert keep their original order.
    """
    if topk_ids.dim() != 2:
        raise ValueError(f"topk_ids must be [M, top_k], got {tuple(topk_ids.shape)}")
    if block_m <= 0:
        raise ValueError(f"block_m must be positive, got {block_m}")
    device = topk_ids.device
    flat = topk_ids.reshape(-1).to(torch.int64)
    numel = flat.numel()
    counts = torch.bincount(flat, minlength=num_experts)
    padded = (counts + block_m - 1) // block_m * block_m
    padded_starts = torch.cumsum(padded, 0) - padded
    count_starts = torch.cumsum(counts, 0) - counts
    total = int(padded.sum().item())
    order = torch.argsort(flat, stable=True)
    sorted_experts = flat[order]
    rank_in_expert = torch.arange(numel, device=device) - count_starts[sorted_experts]
    dest = padded_starts[sorted_experts] + rank_in_expert
    sorted_ids = torch.full((total,), numel, dtype=torch.int32, device=device)
    sorted_ids[dest] = order.to(torch.int32)
    expert_ids = torch.repeat_interleave(
        torch.arange(num_experts, device=device, dtype=torch.int32), padded // block_m
    )
    return sorted_ids, expert_ids, torch.tensor([total], dtype=torch.int32, device=device)
