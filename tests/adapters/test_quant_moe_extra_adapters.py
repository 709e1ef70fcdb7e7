"""Adapters of catalog rows 43, 45, 69, 70, 71, 82, 83 (int4 fused-MoE GEMM, zero-expert identity, static fp8
quant, column-major int8 group quant, MX scale swizzle, MoE permute, MoE router).

On a CPU-only machine every IMPL's `available()` must return a one-line reason (never raise, never None), and
where an upstream's cache tree exists its kernel modules must import through the loader.  vLLM's fused_moe module
needs pydantic and SGLang's kernel modules msgspec (device wheels, not in the CPU venv): an import that fails
while those are absent is skipped with that reason.
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
    "upstream_adapters.moe.fused_moe_wna16",
    "upstream_adapters.moe.zero_experts_identity",
    "upstream_adapters.moe.moe_permute",
    "upstream_adapters.moe.moe_router",
    "upstream_adapters.quantization.static_quant_fp8",
    "upstream_adapters.quantization.per_token_group_quant_int8_colmajor",
    "upstream_adapters.quantization.mx_block_rearrange",
]
DEVICE_WHEELS = ("msgspec", "pydantic")


def _impls():
    out = []
    for name in ADAPTER_MODULES:
        mod = importlib.import_module(name)
        out += [pytest.param(impl, id=f"{impl.kernel}-{impl.provider}") for impl in mod.IMPLS]
    return out


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
    assert impl.provider == impl.package and impl.provider in ("vllm", "sglang")
    assert spec.catalog_rows and spec.check_cases()


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
errors, launchers = {{}}, {{}}
for m, attrs in {mods!r}:
    try:
        mod = up.import_module(m, stub_missing=True)
        launchers[m] = [a for a in attrs if not callable(getattr(mod, a, None))]
    except Exception as e:
        errors[m] = type(e).__name__ + ": " + str(e).splitlines()[0][:150] if str(e) else type(e).__name__
print(json.dumps({{"errors": errors, "missing": launchers}}))
"""

# the launcher each adapter calls, per module
LAUNCHERS = {
    "vllm.model_executor.layers.fused_moe.fused_moe": ["invoke_fused_moe_wna16_triton_kernel",
                                                        "try_get_optimal_moe_config", "should_moe_wna16_use_cuda",
                                                        "get_moe_wna16_block_config", "zero_experts_compute_triton"],
    "sglang.kernels.ops.quantization.fp8_kernel": ["static_quant_fp8", "_per_token_group_quant_8bit_raw"],
    "sglang.kernels.ops.moe.ep_moe_kernels": ["_moe_permute_rows", "moe_permute"],
    "sglang.kernels.ops.moe.router": ["fused_moe_router_shim"],
    "sglang.srt.layers.dp_attention": ["is_dp_attention_enabled"],
    "vllm.model_executor.layers.quantization.qutlass_utils": ["triton_mx_block_rearrange"],
}


def _modules_by_upstream() -> dict[str, list[tuple[str, list[str]]]]:
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for param in _impls():
        impl = param.values[0]
        seen = out.setdefault(impl.package, [])
        seen += [(m, LAUNCHERS.get(m, [])) for m in impl.modules if m not in [s[0] for s in seen]]
    return out


@pytest.mark.parametrize(("name", "mods"), sorted(_modules_by_upstream().items()))
def test_upstream_modules_import_through_loader(name: str, mods: list[tuple[str, list[str]]]) -> None:
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
    assert not any(result["missing"].values()), result["missing"]
