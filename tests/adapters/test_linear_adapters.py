"""The `linear` upstream adapters without a GPU: every impl explains why it cannot run, and the kernel modules
each adapter names import through the loader from the cached upstream trees (each upstream in its own
subprocess, so stand-ins registered for one do not leak into other tests)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness import registry
from harness.specs.linear._common import DTYPES
from upstream_adapters._loader import default_cache_dir, read_lock

ROOT = Path(__file__).resolve().parents[2]
ADAPTER_DIR = ROOT / "upstream_adapters" / "linear"
ADAPTER_MODULES = sorted(f"upstream_adapters.linear.{p.stem}" for p in ADAPTER_DIR.glob("*.py")
                         if not p.name.startswith("_"))
IMPLS = [impl for mod in ADAPTER_MODULES for impl in importlib.import_module(mod).IMPLS]


def _id(impl) -> str:
    return f"{impl.kernel}-{impl.provider}"


def test_every_impl_has_a_linear_spec_and_a_known_provider():
    specs = registry.specs()
    assert len(IMPLS) >= 10
    for impl in IMPLS:
        spec = specs[impl.kernel]
        assert spec.category == "linear"
        # GitHub-only upstreams are named by their upstreams.lock entry
        assert impl.provider in registry.PROVIDERS or impl.provider in read_lock().upstreams
        assert impl.dtypes is None or set(impl.dtypes) <= set(spec.dtypes) <= set(DTYPES)
    pairs = [(i.kernel, i.provider) for i in IMPLS]
    assert len(pairs) == len(set(pairs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason; this machine has a GPU")
@pytest.mark.parametrize("impl", IMPLS, ids=_id)
def test_available_gives_a_one_line_reason_without_cuda(impl):
    reason = impl.available()
    assert isinstance(reason, str) and reason and "\n" not in reason and "GPU" in reason


def _modules_by_upstream() -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for impl in IMPLS:
        out.setdefault(impl.package, set()).update(impl.modules)
    return {k: sorted(v) for k, v in sorted(out.items())}


_PROBE = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {root!r})
    os.environ["FLA_DISABLE_BACKEND_DISPATCH"] = "1"
    from upstream_adapters._loader import load, vllm_platform
    up = load({name!r})
    res = {{"unavailable": up.unavailable, "failed": {{}}}}
    if not up.unavailable:
        if {name!r} == "vllm":
            vllm_platform(up)
        for m in {mods!r}:
            try:
                up.import_module(m, stub_missing=True)
            except Exception as e:
                res["failed"][m] = type(e).__name__ + ": " + str(e).splitlines()[0][:300]
    res["stubbed"] = list(up.stubbed)
    print(json.dumps(res))
""")


@pytest.mark.parametrize("name,mods", list(_modules_by_upstream().items()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_kernel_modules_import_through_the_loader(name, mods):
    cache = default_cache_dir() / name
    if not cache.is_dir() and not (default_cache_dir() / f"{name}.zip").exists():
        pytest.skip(f"no cached tree for {name} ({cache}); build it with scripts/fetch_upstreams.py --only {name}")
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(root=str(ROOT), name=name, mods=mods)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["unavailable"] is None, res["unavailable"]
    if res["failed"]:
        # the device image gets the runtime wheels upstreams.lock lists (pydantic, msgspec, ...); this CPU venv
        # may lack them, and a stand-in cannot subclass or decorate like the real package
        device_only = {w.name.replace("-", "_") for w in read_lock().wheels}
        stubbed = {s.split(".")[0] for s in res["stubbed"]}
        if stubbed & device_only:
            ok = len(mods) - len(res["failed"])
            pytest.skip(f"{name}: {ok}/{len(mods)} kernel modules import; the rest need device wheel(s) "
                        f"{sorted(stubbed & device_only)} missing in this venv: {next(iter(res['failed'].values()))}")
        pytest.fail(f"{name}: {res['failed']}")
