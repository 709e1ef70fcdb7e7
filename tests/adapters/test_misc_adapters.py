"""Adapters of the quantization / activation / normalization / lora / sampling / moe specs (fused_moe aside).

On a CPU-only machine every IMPL's `available()` must return a one-line reason (never raise, never None), and
where an upstream's cache tree exists its kernel modules must import through the loader.  SGLang's kernel
modules import `sglang.srt.platforms`, which needs msgspec, and vLLM's logprob module needs pydantic (device
wheels, not in the CPU venv): an import that fails while those are absent is skipped with that reason.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from harness.registry import specs
from tests.adapters._probe import check_impl

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


@pytest.mark.parametrize("impl", _impls())
def test_upstream_modules_import_through_the_adapter(impl) -> None:
    check_impl(impl)


def test_row_quant_launch_is_the_launchers_heuristic():
    """row_quant_launch restates the warp heuristic of vLLM's group-quant launchers; check it against the pinned
    source text where the tree exists, and its values everywhere."""
    from upstream_adapters._loader import default_cache_dir
    from upstream_adapters.quantization._common import row_quant_launch

    assert row_quant_launch(128) == {"BLOCK": 128, "num_warps": 1, "num_stages": 1}
    assert row_quant_launch(100) == {"BLOCK": 128, "num_warps": 1, "num_stages": 1}
    assert row_quant_launch(1024)["num_warps"] == 4 and row_quant_launch(7168)["num_warps"] == 8
    src = default_cache_dir() / "vllm" / "vllm/model_executor/layers/quantization/utils/int8_utils.py"
    if src.exists():
        assert "num_warps = min(max(BLOCK // 256, 1), 8)" in src.read_text()
