"""Shared base of the attention-family adapters: lazy upstream import through the loader, the CPU / import
reasons of `available()`, versions and notes.  Kernel-specific adapters subclass `UpstreamImpl`."""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from harness.spec import Impl


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


def cuda_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (the upstream Triton kernel is launched on the device)"
    return None


class UpstreamImpl(Impl):
    """Loads `modules` of lock entry `package` once, on first use (never at harness import time)."""

    package: str = ""
    modules: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._mods: dict[str, Any] | None = None
        self._up: Any = None
        self.platform: dict[str, Any] | None = None

    def _before_import(self) -> None:
        """Hook run after the upstream resolved and before its modules import (platform pinning, env)."""

    def load_modules(self) -> dict[str, Any]:
        if self._mods is None:
            from upstream_adapters._loader import load

            self._up = load(self.package)
            if self._up.unavailable:
                raise RuntimeError(self._up.unavailable)
            self._before_import()
            self._mods = {m: self._up.import_module(m, stub_missing=True) for m in self.modules}
        return self._mods

    def import_reason(self) -> str | None:
        """None when the upstream modules import here, else the one-line reason (works without a GPU)."""
        try:
            self.load_modules()
        except Exception as e:  # noqa: BLE001 - the reason is the product here
            msg = str(e).strip().splitlines()
            return f"{self.package} kernels failed to import: {type(e).__name__}: {msg[0][:200] if msg else ''}"
        return None

    def available(self) -> str | None:
        return cuda_reason() or self.import_reason()

    def versions(self) -> dict[str, str]:
        return {self.package: self._up.version} if self._up else {}

    def base_notes(self) -> list[str]:
        notes = []
        if self.platform is not None:
            notes.append("vllm current_platform " + json.dumps(self.platform, sort_keys=True, default=str))
        stubbed = sorted(getattr(self._up, "stubbed", []) or [])
        if stubbed:
            notes.append("stand-ins for unloadable modules: " + ", ".join(stubbed))
        return notes


class VllmImpl(UpstreamImpl):
    """vLLM: pin current_platform to CUDA before any kernel module binds it (see _loader.vllm_platform)."""

    provider = "vllm"
    package = "vllm"

    def _before_import(self) -> None:
        from upstream_adapters._loader import vllm_platform

        self.platform = vllm_platform(self._up)


class SglangImpl(UpstreamImpl):
    provider = "sglang"
    package = "sglang"


class FlashinferImpl(UpstreamImpl):
    provider = "flashinfer"
    package = "flashinfer"


class FlaImpl(UpstreamImpl):
    provider = "fla"
    package = "fla"

    def _before_import(self) -> None:
        # fla.backends dispatch would route some launchers to non-Triton backends; pin the Triton path
        os.environ["FLA_DISABLE_BACKEND_DISPATCH"] = "1"
