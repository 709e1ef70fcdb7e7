"""Shared plumbing of the quantization / activation / normalization / lora / sampling / moe adapters: the one
upstream-adapter base class (upstream_adapters/_base.py)."""

from __future__ import annotations

from upstream_adapters._base import FLA_DISPATCH_ENV, UpstreamImpl, cuda_reason

__all__ = ["FLA_DISPATCH_ENV", "UpstreamImpl", "cuda_reason"]
