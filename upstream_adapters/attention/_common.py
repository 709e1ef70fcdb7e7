"""Shared pieces of the attention-family adapters: per-upstream subclasses of the one adapter base
(upstream_adapters/_base.py) and paged-KV helpers."""

from __future__ import annotations

import torch

from upstream_adapters._base import UpstreamImpl, cuda_reason

__all__ = ["FlaImpl", "FlashinferImpl", "SglangImpl", "UpstreamImpl", "VllmImpl", "cuda_reason", "sm_count",
           "token_slots"]


def sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def token_slots(block_table: torch.Tensor, seq_lens: torch.Tensor, page: int) -> torch.Tensor:
    """Flat token-slot indices (block * page + offset) of every sequence, in order, as int64: what a page-size-1
    pool (SGLang's req_to_token / kv_indices) holds for the same paged memory."""
    slots = []
    for i, n in enumerate(seq_lens.tolist()):
        blocks = block_table[i, :(n + page - 1) // page].long()
        offs = torch.arange(page, device=block_table.device)
        slots.append((blocks[:, None] * page + offs[None, :]).flatten()[:n])
    return torch.cat(slots).to(torch.int64)


class VllmImpl(UpstreamImpl):
    """vLLM: pin current_platform to CUDA before any kernel module binds it (see _loader.vllm_platform)."""

    provider = "vllm"
    package = "vllm"


class SglangImpl(UpstreamImpl):
    provider = "sglang"
    package = "sglang"


class FlashinferImpl(UpstreamImpl):
    provider = "flashinfer"
    package = "flashinfer"


class FlaImpl(UpstreamImpl):
    provider = "fla"
    package = "fla"
