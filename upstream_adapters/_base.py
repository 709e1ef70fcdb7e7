"""The one base class of upstream adapters: load a locked upstream through the loader, import its kernel modules
once (on first use, never at harness import time), answer `available()` with a one-line reason, and describe in
the row's notes what production set-up was applied and which modules needed stand-ins.

Set-up applied before the kernel modules import, per upstream:
    vllm   `vllm_platform(up)` pins current_platform to CUDA before the kernel modules bind it, so their
           module-level platform branches and tuned-config lookups are the production ones.
    fla    (and upstreams that require it) FLA_DISABLE_BACKEND_DISPATCH=1, so fla's `@dispatch` wrappers run its
           own Triton path rather than an optional CUDA/TileLang backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import torch

from harness.spec import Impl

FLA_DISPATCH_ENV = "FLA_DISABLE_BACKEND_DISPATCH"


class Relayout:
    """Untimed translations of spec-layout inputs into the layout the upstream's production caller hands its
    kernel (a transposed state, a base-2 LSE, head-first q/k/v...): `rl(lambda: f(inputs[...]))` returns a buffer
    holding the translation now; `Prepared(..., relayout=rl.refresh)` lets the gate recompute every buffer into
    the same storage after it rewrites the inputs (so the upstream is timed as served, and still checked on
    new values)."""

    def __init__(self) -> None:
        self._refresh: list[Callable[[], object]] = []

    def __call__(self, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        buf = make().contiguous()
        self._refresh.append(lambda: buf.copy_(make()))
        return buf

    def refresh(self) -> None:
        for f in self._refresh:
            f()


def cuda_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (the upstream Triton kernel is launched on the device)"
    return None


#: modules imported (with stand-ins for missing deps) before an adapter's own, per upstream, because the
#: upstream imports them lazily where the loader's import hooks no longer apply:
#:   vllm.distributed   vllm.logger's `warning_once` imports it on first use (e.g. the LoRA config lookup); it
#:                      needs pyzmq, absent on the device (seen on the H100: ModuleNotFoundError 'zmq')
PRELOAD: dict[str, tuple[str, ...]] = {"vllm": ("vllm.distributed",)}

#: real parent packages a module needs (not bypassed by a stand-in parent), imported just before it:
#:   fp8_kernel on CUDA does `from sglang.kernels.ops.quantization import sgl_per_token_quant_fp8`, a name the
#:   package __init__ registers (seen on the H100: ImportError from the stand-in parent)
PARENTS_FIRST: dict[str, str] = {
    "sglang.kernels.ops.quantization.fp8_kernel": "sglang.kernels.ops.quantization",
}


class UpstreamImpl(Impl):
    """An Impl backed by `modules` (dotted names) of lock entry `package`."""

    package: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._mods: dict[str, ModuleType] | None = None
        self._up: Any = None
        self.platform: dict[str, Any] | None = None

    def _before_import(self) -> None:
        """Runs once the upstream resolved and before its modules import."""
        if self.package == "fla" or "fla" in getattr(getattr(self._up, "entry", None), "requires", ()):
            os.environ[FLA_DISPATCH_ENV] = "1"  # read once, when fla.backends imports
        if self.package == "vllm":
            from upstream_adapters._loader import vllm_platform

            self.platform = vllm_platform(self._up)

    def _after_import(self, mods: dict[str, ModuleType]) -> None:
        """Runs once after the modules imported (e.g. answer for a bypassed package __init__)."""

    def load_modules(self) -> dict[str, ModuleType]:
        """Import `modules` once; raises with the loader's reason when the upstream is unavailable."""
        if self._mods is None:
            from upstream_adapters._loader import load

            self._up = load(self.package)
            if self._up.unavailable:
                raise RuntimeError(self._up.unavailable)
            self._before_import()
            for name in PRELOAD.get(self.package, ()):
                try:
                    self._up.import_module(name, stub_missing=True)
                except Exception:  # noqa: BLE001 - only a convenience for lazy imports; the kernels decide
                    pass
            for name in self.modules:
                if name in PARENTS_FIRST:
                    self._up.import_module(PARENTS_FIRST[name], stub_missing=True)
            mods = {m: self._up.import_module(m, stub_missing=True) for m in self.modules}
            self._after_import(mods)
            self._mods = mods
        return self._mods

    _load = load_modules

    def mod(self, name: str) -> Any:
        return self.load_modules()[name]

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
        out = []
        if self.platform is not None:
            out.append("vllm current_platform " + json.dumps(self.platform, sort_keys=True, default=str))
        if os.environ.get(FLA_DISPATCH_ENV) == "1" and (self.package == "fla" or "fla" in getattr(
                getattr(self._up, "entry", None), "requires", ())):
            out.append(f"{FLA_DISPATCH_ENV}=1 (fla Triton path)")
        stubbed = sorted(getattr(self._up, "stubbed", []) or [])
        if stubbed:
            out.append("stand-ins for unloadable modules: " + ", ".join(stubbed))
        return out

    def notes(self, *extra: str) -> str:
        """The row's notes: the caller's facts (what ran instead of a compiled op...), then the set-up."""
        return "; ".join([e for e in extra if e] + self.base_notes())
