"""Shared adapter plumbing for the quantization / activation / normalization / lora / sampling / moe adapters
written alongside it: load one upstream through the loader, import its kernel modules once, answer
`available()` with a one-line reason, and describe stand-ins in the row's notes.

vLLM adapters pin `current_platform` to CUDA (`vllm_platform`) before importing any kernel module, so the
module-level platform branches (e.g. `round_int8` picking libdevice.round for CUDA) are the production ones.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import torch

from harness.spec import Impl


def cuda_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (the upstream Triton kernel is launched on the device)"
    return None


class UpstreamImpl(Impl):
    """An Impl backed by modules of one locked upstream (`package`: vllm, sglang, mamba_ssm, flashinfer)."""

    package: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._mods: dict[str, Any] | None = None
        self._up: Any = None
        self.platform: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._mods is None:
            from upstream_adapters._loader import load

            self._up = load(self.package)
            if self._up.unavailable:
                raise RuntimeError(self._up.unavailable)
            if self.package == "vllm":
                from upstream_adapters._loader import vllm_platform

                self.platform = vllm_platform(self._up)
            self._mods = {m: self._up.import_module(m, stub_missing=True) for m in self.modules}
        return self._mods

    def mod(self, name: str) -> Any:
        return self._load()[name]

    def available(self) -> str | None:
        reason = cuda_reason()
        if reason:
            return reason
        try:
            self._load()
        except Exception as e:  # noqa: BLE001 - the reason is the product here
            msg = str(e).strip().splitlines()
            return f"{self.package} kernels failed to import: {type(e).__name__}: {msg[0][:200] if msg else ''}"
        return None

    def versions(self) -> dict[str, str]:
        return {self.package: self._up.version} if self._up else {}

    def notes(self, *extra: str) -> str:
        """The row's notes: the platform vLLM saw, what ran instead of a compiled op, stand-ins used."""
        out = list(extra)
        if self.platform is not None:
            out.insert(0, "vllm current_platform " + json.dumps(self.platform, sort_keys=True))
        stubbed = sorted(getattr(self._up, "stubbed", []) or [])
        if stubbed:
            out.append(f"stand-ins for unloadable modules: {', '.join(stubbed)}")
        return "; ".join(out)
