"""Adapters of the quantization / activation / normalization / lora / sampling / moe specs (fused_moe aside).

On a CPU-only machine every IMPL's `available()` must return a one-line reason (never raise, never None), and
where an upstream's cache tree exists its kernel modules must import through the loader.  SGLang's kernel
modules import `sglang.srt.platforms`, which needs msgspec, and vLLM's logprob module needs pydantic (device
wheels, not in the CPU venv): an import that fails while those are absent is skipped with that reason.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.registry import specs

ADAPTER_MODULES = [
    "upstream_adapters.quantization.per_token_group_quant_fp8",
    "upstream_adapters.quantization.per_token_group_quant_int8",
    "upstream_adapters.quantization.per_token_quant_int8",
    "upstream_adapters.quantization.w8a8_block_fp8_matmul",
    "upstream_adapters.quantization.triton_scaled_mm",
    "upstream_adapters.quantization.awq_dequantize",
    "upstream_adapters.quantization.awq_gemm",
    "upstream_adapters.activation.silu_and_mul",
    "upstream_adapters.activation.silu_mul_fp8_quant",
    "upstream_adapters.normalization.rms_norm_gated",
    "upstream_adapters.normalization.add_rms_norm",
    "upstream_adapters.lora.lora_shrink",
    "upstream_adapters.lora.lora_expand",
    "upstream_adapters.moe.moe_align_block_size",
    "upstream_adapters.moe.ep_gather",
    "upstream_adapters.sampling.rotate_input_ids",
    "upstream_adapters.sampling.eagle_prepare",
    "upstream_adapters.sampling.vllm_sampling",
]


def _impls():
    out = []
    for name in ADAPTER_MODULES:
        mod = importlib.import_module(name)
        out += [pytest.param(impl, id=f"{impl.kernel}-{impl.provider}") for impl in mod.IMPLS]
    return out


# Installed on the device image (device_notes.md), not in the CPU venv: the loader stands them in, which is enough
# for most kernel modules but not for sglang.srt.platforms (msgspec.Struct subclass) or vLLM modules that build
# pydantic dataclasses at import (v1/worker/gpu/sample/logprob.py via vllm.sampling_params).
DEVICE_WHEELS = ("msgspec", "pydantic")


def _missing_device_wheels() -> list[str]:
    missing = []
    for name in DEVICE_WHEELS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


@pytest.mark.parametrize("impl", _impls())
def test_impl_matches_a_spec(impl):
    spec = specs()[impl.kernel]
    assert set(impl.dtypes or ()) <= set(spec.dtypes)
    assert impl.provider in ("vllm", "sglang", "mamba_ssm", "flashinfer")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
@pytest.mark.parametrize("impl", _impls())
def test_available_gives_a_reason_on_cpu(impl):
    reason = impl.available()
    assert isinstance(reason, str) and reason and "\n" not in reason


_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from upstream_adapters._loader import load, vllm_platform
up = load({name!r})
if up.unavailable:
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
if {name!r} == "vllm":
    vllm_platform(up)
errors = {{}}
for m in {mods!r}:
    try:
        up.import_module(m, stub_missing=True)
    except Exception as e:
        errors[m] = type(e).__name__ + ": " + str(e).splitlines()[0][:150] if str(e) else type(e).__name__
print(json.dumps({{"errors": errors}}))
"""


def _modules_by_upstream() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for param in _impls():
        impl = param.values[0]
        out.setdefault(impl.package, [])
        out[impl.package] += [m for m in impl.modules if m not in out[impl.package]]
    return out


@pytest.mark.parametrize(("name", "mods"), sorted(_modules_by_upstream().items()))
def test_upstream_modules_import_through_loader(name: str, mods: list[str]) -> None:
    """Each upstream in its own interpreter, so its stand-ins and pinned platform do not leak into other tests."""
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(root=root, name=name, mods=mods)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        pytest.skip(f"{name} cache absent: {result['unavailable']}")
    errors = result["errors"]
    missing = _missing_device_wheels()
    if errors and missing:
        pytest.skip(f"{name}: {len(mods) - len(errors)}/{len(mods)} kernel modules import; the rest need device "
                    f"wheels absent from the CPU venv ({', '.join(missing)}): {sorted(errors.items())[0]}")
    assert not errors, errors
