"""Shared plumbing of the quantization / activation / normalization / lora / sampling / moe adapters: the one
upstream-adapter base class (upstream_adapters/_base.py)."""

from __future__ import annotations

from types import ModuleType

import torch

from harness.specs.quantization._common import EPS
from upstream_adapters._base import FLA_DISPATCH_ENV, UpstreamImpl, cuda_reason

__all__ = ["FLA_DISPATCH_ENV", "UpstreamImpl", "cuda_reason", "row_quant_launch", "vllm_group_quant_fp8"]


def row_quant_launch(width: int) -> dict[str, int]:
    """The launch config vLLM's and SGLang's row / token-group quant launchers derive from the quantized width
    (a group, or a whole row): BLOCK = next power of two, warps = BLOCK / 256 clamped to 1..8, one stage."""
    import triton

    block = triton.next_power_of_2(width)
    return {"BLOCK": block, "num_warps": min(max(block // 256, 1), 8), "num_stages": 1}


def vllm_group_quant_fp8(fp8u: ModuleType, x: torch.Tensor, group: int, xq: torch.Tensor | None = None,
                         xs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """vLLM's `per_token_group_quant_fp8` (fp8_utils, module `fp8u`), row-major scales, launched as the launcher's
    Triton fallback does: on CUDA the launcher prefers torch.ops._C.per_token_group_fp8_quant, a compiled op that
    is not loadable here.  Same grid, BLOCK, warp heuristic, fp8 limits and eps as the launcher."""

    if xq is None:
        xq = torch.empty(x.shape, device=x.device, dtype=torch.float8_e4m3fn)
    if xs is None:
        xs = torch.empty(x.shape[:-1] + (x.shape[-1] // group,), device=x.device, dtype=torch.float32)
    fp8_min, fp8_max = fp8u.get_fp8_min_max()
    fp8u._per_token_group_quant_fp8[(x.numel() // group,)](
        x, xq, xs, group, x.shape[1], x.stride(0), EPS, fp8_min=fp8_min, fp8_max=fp8_max, use_ue8m0=False,
        **row_quant_launch(group))
    return xq, xs
