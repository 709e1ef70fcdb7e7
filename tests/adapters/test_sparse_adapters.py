"""sparse adapters without a GPU: a one-line reason from available(); the upstream modules (SGLang DSA, the NSA
kernels of nsa-triton, fla and nsa-impl) import through the loader from the pinned trees, each in a subprocess
(nothing leaks into other tests, and nsa-triton's package name native_sparse_attention never meets another)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import registry

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from upstream_adapters._loader import load
up = load("sglang")
if up.unavailable:
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
mod = up.import_module("sglang.kernels.ops.attention.dsa.triton_kernel", stub_missing=True)
print(json.dumps({{"file": mod.__file__, "root": str(up.root),
                   "callable": callable(getattr(mod, "get_valid_kv_indices", None))}}))
"""


def test_provider_registered():
    assert [p for p in registry.providers("dsa_valid_kv_indices") if p != registry.HELION] == ["sglang"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason; this machine has a GPU")
def test_available_gives_a_one_line_reason_without_gpu():
    reason = registry.get_impl("dsa_valid_kv_indices", "sglang").available()
    assert isinstance(reason, str) and "CUDA" in reason and "\n" not in reason


def test_upstream_imports_through_loader():
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(root=str(ROOT))], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        pytest.skip(f"sglang cache absent: {result['unavailable'][:120]}")
    assert result["file"].startswith(result["root"]) and result["callable"]


# ------------------------------------------------------------------------------------------------ NSA

NSA_PROVIDERS = {
    "nsa_selection_attention": {"nsa-triton", "fla", "nsa-impl"},
    "nsa_compressed_attention": {"nsa-triton"},
}

#: lock entry -> (module, launcher) the NSA adapters load
NSA_MODULES = {
    "nsa-triton": [("native_sparse_attention.ops.triton.topk_sparse_attention", "topk_sparse_attention"),
                   ("native_sparse_attention.ops.triton.compressed_attention", "compressed_attention")],
    "fla": [("fla.ops.nsa.parallel", "parallel_nsa")],
    "nsa-impl": [("nsa.selection", "selection_attention")],
}

_NSA_PROBE = """
import json, os, sys
sys.path.insert(0, {root!r})
from upstream_adapters._loader import load
up = load({name!r})
if up.unavailable:
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
os.environ["FLA_DISABLE_BACKEND_DISPATCH"] = "1"
res = {{"root": str(up.root), "mods": {{}}}}
for name, fn in {mods!r}:
    mod = up.import_module(name, stub_missing=True)
    res["mods"][name] = [mod.__file__, callable(getattr(mod, fn, None))]
res["nsp"] = sorted(m for m in sys.modules if m.split(".")[0] == "native_sparse_attention")
print(json.dumps(res))
"""


@pytest.mark.parametrize("kernel", sorted(NSA_PROVIDERS))
def test_nsa_providers_registered(kernel):
    from upstream_adapters._loader import read_lock

    assert set(registry.providers(kernel)) - {registry.HELION} == NSA_PROVIDERS[kernel]
    for provider in NSA_PROVIDERS[kernel]:
        impl = registry.get_impl(kernel, provider)
        # a GitHub-only source is named by its lock entry, and the adapter loads that entry
        assert impl.provider in registry.PROVIDERS or impl.provider in read_lock().upstreams
        assert impl.package == provider and impl.dtypes == ("bf16",)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason; this machine has a GPU")
@pytest.mark.parametrize("kernel,provider", [(k, p) for k, ps in sorted(NSA_PROVIDERS.items()) for p in sorted(ps)])
def test_nsa_available_gives_a_one_line_reason_without_gpu(kernel, provider):
    reason = registry.get_impl(kernel, provider).available()
    assert isinstance(reason, str) and "CUDA" in reason and "\n" not in reason


@pytest.mark.parametrize("name", sorted(NSA_MODULES))
def test_nsa_upstreams_import_through_loader(name):
    code = _NSA_PROBE.format(root=str(ROOT), name=name, mods=NSA_MODULES[name])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        pytest.skip(f"{name} cache absent: {result['unavailable'][:120]}")
    for mod, (path, ok) in result["mods"].items():
        assert path.startswith(result["root"]) and ok, mod
    if name != "nsa-triton":  # fla-nsa shares the package name; neither fla nor nsa-impl may pull it in
        assert result["nsp"] == []


def test_nsa_fla_refuses_small_groups_with_a_reason():
    """parallel_nsa tiles the GQA group (power of 2 >= 16): the adapter says so for a group of 2, before any launch."""
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import torch
from harness import registry
from harness.spec import Case
from upstream_adapters._loader import load
if load("fla").unavailable:
    print("SKIP"); raise SystemExit(0)
spec, impl = registry.specs()["nsa_selection_attention"], registry.get_impl("nsa_selection_attention", "fla")
case = Case("t", "test", {{"B": 1, "T": 20, "Hq": 4, "Hkv": 2, "D": 16, "BS": 16, "S": 2}})
inp = spec.make_inputs(case, "bf16", torch.device("cpu"), 0)
try:
    impl.prepare(inp, spec.make_output(inp, case, "bf16"), case, "bf16")
except ValueError as e:
    print("REASON", e)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if "SKIP" in proc.stdout:
        pytest.skip("fla cache absent")
    assert "REASON fla parallel_nsa needs a GQA group" in proc.stdout and "4/2 = 2" in proc.stdout
