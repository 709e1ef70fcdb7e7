"""quantized_attention adapters without a GPU: a one-line reason from available(), and the SageAttention 1.0.6
entry module imports through the loader (from the pinned tree) where its cache exists -- in a subprocess, so
nothing it imports leaks into other tests."""

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
up = load("sageattention")
if up.unavailable:
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
mod = up.import_module("sageattention.core", stub_missing=True)
print(json.dumps({{"file": mod.__file__, "root": str(up.root), "version": up.version,
                   "callable": callable(getattr(mod, "sageattn", None)), "stubbed": up.stubbed}}))
"""


def test_sageattn_provider_registered():
    impl = registry.get_impl("sageattn", "sageattention")
    assert "sageattention" in registry.providers("sageattn") and impl.modules == ("sageattention.core",)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason; this machine has a GPU")
def test_available_gives_a_one_line_reason_without_gpu():
    reason = registry.get_impl("sageattn", "sageattention").available()
    assert isinstance(reason, str) and "CUDA" in reason and "\n" not in reason


def test_upstream_imports_through_loader():
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(root=str(ROOT))], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        pytest.skip(f"sageattention cache absent: {result['unavailable'][:120]}")
    assert result["file"].startswith(result["root"]) and result["callable"]
    assert result["version"] == "1.0.6" and result["stubbed"] == []  # imports only torch/triton
