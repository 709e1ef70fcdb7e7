"""One import probe for the adapter tests: import an adapter's upstream modules in a fresh interpreter (so its
stand-ins and pinned platform never leak into other tests; tests/loader plants fake packages) and report, per
kernel module, whether it imported from the pinned tree and which of the named launchers it lacks.

`check_impl(impl, {module: [launcher, ...]})` imports them the way the runner does, through the adapter's own
`load_modules()` (its production set-up, preloads and parent packages), one adapter per interpreter as the runner
isolates kernel x provider.  It skips when the upstream's tree is absent, or when some modules fail only because
device packages (DEVICE_WHEELS) are missing from this CPU venv; otherwise it
asserts every module imported from the pinned tree with every launcher callable.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: packages the GPU box has (msgspec, pydantic from .whl: upstreams.lock [device_wheels]; transformers on the image)
#: that vLLM / SGLang kernel-module imports need (msgspec.Struct subclasses, pydantic dataclasses at import, SGLang's
#: utils importing transformers); without them a CPU venv can only import part of those upstreams
DEVICE_WHEELS = ("msgspec", "pydantic", "transformers")

_PROBE = """
import importlib, json, sys
sys.path.insert(0, {root!r})
from upstream_adapters._loader import load
up = load({package!r})
if up.unavailable:  # answered before torch and the adapter import: a CI machine without the tree stays fast
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
impl = getattr(importlib.import_module({adapter!r}), {cls!r})()
errors, missing = {{}}, []
try:
    mods = impl.load_modules()
except Exception as e:
    errors["load_modules"] = type(e).__name__ + ": " + (str(e).splitlines() or [""])[0][:150]
    mods = {{}}
for m, fns in {launchers!r}.items():
    mod = mods.get(m) or sys.modules.get(m)
    if mod is None:
        errors.setdefault(m, "not imported")
        continue
    if str(impl._up.root) not in (mod.__file__ or ""):
        errors[m] = "imported from " + str(mod.__file__) + ", not the pinned tree " + str(impl._up.root)
    missing += [m + "." + f for f in fns if not callable(getattr(mod, f, None))]
print(json.dumps({{"errors": errors, "missing": missing, "version": impl._up.version}}))
"""


def missing_device_wheels() -> list[str]:
    out = []
    for name in DEVICE_WHEELS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def probe(impl, launchers: Mapping[str, Iterable[str]]) -> dict:
    """The probe's JSON answer for adapter `impl` and {module: launcher names} (modules default to its own)."""
    spec = {m: list(launchers.get(m, ())) for m in impl.modules} | {m: list(f) for m, f in launchers.items()}
    code = _PROBE.format(root=str(ROOT), package=impl.package, adapter=type(impl).__module__,
                         cls=type(impl).__name__, launchers=spec)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_impl(impl, launchers: Mapping[str, Iterable[str]] | None = None) -> dict:
    """Assert (or skip with the reason) as the module docstring says; returns the probe's answer."""
    result = probe(impl, launchers or {})
    name = impl.package
    if "unavailable" in result:
        pytest.skip(f"{name} cache absent: {result['unavailable'][:160]}")
    errors = result["errors"]
    absent = missing_device_wheels()
    if errors and absent and name in ("vllm", "sglang"):
        pytest.skip(f"{name}: {impl.kernel}'s modules need device packages absent from the CPU venv "
                    f"({', '.join(absent)}): {sorted(errors.items())[0]}")
    assert not errors, errors
    assert not result["missing"], result["missing"]
    return result
