"""Discovery of specs and impls by file convention, so adding a kernel touches only its own three files.

    harness/specs/<category>/<kernel>.py         defines SPEC (a KernelSpec)
    upstream_adapters/<category>/<kernel>.py     defines IMPLS (list of Impl; upstream loaded lazily)
    ports/<category>/<kernel>.py                 defines IMPL (the Helion port; imports helion, so it is
                                                 imported only inside the worker that runs it)

HELION_BENCH_EXTRA_MODULES (comma-separated module names, each defining SPEC and/or IMPLS) adds more; the
tests use it to plant fake kernels.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path

from harness.spec import Impl, KernelSpec

ROOT = Path(__file__).resolve().parent.parent
HELION = "helion"
PROVIDERS = ("vllm", "sglang", "fla", "flashinfer", "mamba_ssm", "sageattention", "github", HELION, "torch")


def _modules_under(package: str) -> list[str]:
    base = ROOT / package.replace(".", "/")
    mods = []
    for path in sorted(base.glob("*/*.py")):
        if path.name.startswith("_"):
            continue
        mods.append(f"{package}.{path.parent.name}.{path.stem}")
    return mods


def _extra_modules() -> list[str]:
    return [m.strip() for m in os.environ.get("HELION_BENCH_EXTRA_MODULES", "").split(",") if m.strip()]


#: modules that failed to import: name -> reason (shown by `harness list`; one broken file costs only itself)
BROKEN: dict[str, str] = {}


def _import(mod_name: str):
    try:
        return importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - a broken kernel file must not take the whole sweep down
        BROKEN[mod_name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        print(f"warning: skipping {mod_name}: {BROKEN[mod_name]}", file=sys.stderr)
        return None


@functools.cache
def specs() -> dict[str, KernelSpec]:
    out: dict[str, KernelSpec] = {}
    for mod_name in _modules_under("harness.specs") + _extra_modules():
        mod = _import(mod_name)
        spec = getattr(mod, "SPEC", None)
        if spec is not None:
            out[spec.id] = spec
    return out


@functools.cache
def _adapter_impls() -> dict[tuple[str, str], Impl]:
    out: dict[tuple[str, str], Impl] = {}
    for mod_name in _modules_under("upstream_adapters") + _extra_modules():
        mod = _import(mod_name)
        for impl in getattr(mod, "IMPLS", ()):
            out[(impl.kernel, impl.provider)] = impl
    return out


def port_module(spec: KernelSpec) -> str | None:
    path = ROOT / "ports" / spec.category / f"{spec.id}.py"
    return f"ports.{spec.category}.{spec.id}" if path.exists() else None


def providers(kernel: str) -> list[str]:
    """Every provider with an impl of `kernel`: upstream adapters first, then the Helion port."""
    spec = specs()[kernel]
    names = [p for (k, p) in _adapter_impls() if k == kernel]
    if port_module(spec):
        names.append(HELION)
    return names


def get_impl(kernel: str, provider: str) -> Impl:
    """Import and return one impl (for the Helion port this imports helion)."""
    impl = _adapter_impls().get((kernel, provider))
    if impl is not None:
        return impl
    spec = specs()[kernel]
    if provider == HELION and port_module(spec):
        mod = importlib.import_module(port_module(spec))
        return mod.IMPL
    raise KeyError(f"no impl '{provider}' for kernel '{kernel}'; valid: {', '.join(providers(kernel))}")


def categories() -> list[str]:
    return sorted({s.category for s in specs().values()})
