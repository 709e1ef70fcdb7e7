"""sparse adapters without a GPU: a one-line reason from available(); the SGLang DSA module imports through the
loader from the pinned tree, in a subprocess (nothing leaks into other tests)."""

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
    assert registry.providers("dsa_valid_kv_indices") == ["sglang"]


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
