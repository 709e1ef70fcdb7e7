"""What every `linear` upstream adapter shares: loading the upstream through the loader, the one-line
`available()` reason, the platform set-up each upstream needs before its kernel modules import, and notes.

    fla        FLA_DISABLE_BACKEND_DISPATCH=1 before the first fla import, so `@dispatch` wrappers run fla's own
               Triton path (not an optional CUDA/TileLang backend).
    vllm       `vllm_platform(up)` pins current_platform to CUDA before the kernel modules bind it.
    sglang     kernel modules import sglang.srt.utils (server stack); missing server-only modules get stand-ins.
    mamba_ssm  parent packages stubbed (mamba_ssm/__init__ pulls transformers / huggingface_hub).
"""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import Any

import torch

from harness.spec import Impl

FLA_DISPATCH_ENV = "FLA_DISABLE_BACKEND_DISPATCH"


def cuda_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (the upstream Triton kernel is launched on the device)"
    return None


class UpstreamImpl(Impl):
    """An upstream adapter whose kernel modules (`modules`, dotted names) come from lock entry `package`."""

    package: str = ""
    modules: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._mods: dict[str, ModuleType] | None = None
        self._up: Any = None
        self.platform: dict[str, Any] | None = None

    def load_modules(self) -> dict[str, ModuleType]:
        """Import `modules` once (raises with the loader's reason when the upstream is unavailable)."""
        if self._mods is None:
            from upstream_adapters._loader import load

            self._up = load(self.package)
            if self._up.unavailable:
                raise RuntimeError(self._up.unavailable)
            self._before_import()
            self._mods = {m: self._up.import_module(m, stub_missing=True) for m in self.modules}
        return self._mods

    def _before_import(self) -> None:
        if self.package == "fla" or "fla" in getattr(self._up.entry, "requires", ()):
            # must precede fla.backends' import: it reads the variable once, at import time
            os.environ[FLA_DISPATCH_ENV] = "1"
        if self.package == "vllm":
            from upstream_adapters._loader import vllm_platform

            self.platform = vllm_platform(self._up)

    def available(self) -> str | None:
        reason = cuda_reason()
        if reason:
            return reason
        try:
            self.load_modules()
        except Exception as e:  # noqa: BLE001 - the reason is the product here
            msg = str(e).strip().splitlines()
            return f"{self.package} kernels failed to import: {type(e).__name__}: {msg[0][:200] if msg else ''}"
        return None

    def versions(self) -> dict[str, str]:
        return {self.package: self._up.version} if self._up else {}

    def notes(self, *extra: str) -> str:
        """Row notes: the caller's facts, the vLLM platform pin, and any stand-ins the import needed."""
        out = [e for e in extra if e]
        if self.package == "fla":
            out.append(f"{FLA_DISPATCH_ENV}=1 (fla Triton path)")
        if self.platform is not None:
            out.append("vllm current_platform " + json.dumps(self.platform, sort_keys=True))
        stubbed = sorted(getattr(self._up, "stubbed", []) or [])
        if stubbed:
            out.append("stand-ins for unloadable modules: " + ", ".join(stubbed))
        return "; ".join(out)
