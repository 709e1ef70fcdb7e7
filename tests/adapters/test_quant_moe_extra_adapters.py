"""Adapters of catalog rows 43, 45, 69, 70, 71, 82, 83 (int4 fused-MoE GEMM, zero-expert identity, static fp8
quant, column-major int8 group quant, MX scale swizzle, MoE permute, MoE router).

On a CPU-only machine every IMPL's `available()` must return a one-line reason (never raise, never None), and
where an upstream's cache tree exists its kernel modules must import through the loader.  vLLM's fused_moe module
needs pydantic and SGLang's kernel modules msgspec (device wheels, not in the CPU venv): an import that fails
while those are absent is skipped with that reason.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from harness.registry import specs
from tests.adapters._probe import check_impl

ADAPTER_MODULES = [
    "upstream_adapters.moe.fused_moe_wna16",
    "upstream_adapters.moe.zero_experts_identity",
    "upstream_adapters.moe.moe_permute",
    "upstream_adapters.moe.moe_router",
    "upstream_adapters.quantization.static_quant_fp8",
    "upstream_adapters.quantization.per_token_group_quant_int8_colmajor",
    "upstream_adapters.quantization.mx_block_rearrange",
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
    assert impl.provider == impl.package and impl.provider in ("vllm", "sglang")
    assert spec.catalog_rows and spec.check_cases()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
@pytest.mark.parametrize("impl", _impls())
def test_available_gives_a_reason_on_cpu(impl):
    reason = impl.available()
    assert isinstance(reason, str) and reason and "\n" not in reason



# the launcher each adapter calls, per module
LAUNCHERS = {
    "vllm.model_executor.layers.fused_moe.fused_moe": ["invoke_fused_moe_wna16_triton_kernel",
                                                        "try_get_optimal_moe_config", "should_moe_wna16_use_cuda",
                                                        "get_moe_wna16_block_config", "zero_experts_compute_triton"],
    "sglang.kernels.ops.quantization.fp8_kernel": ["_static_quant_fp8", "fp8_dtype_to_triton", "is_arch_support_pdl",
                                                   "_per_token_group_quant_8bit_raw"],
    "sglang.kernels.ops.moe.ep_moe_kernels": ["_moe_permute_rows", "moe_permute"],
    "sglang.kernels.ops.moe.router": ["fused_moe_router_shim"],
    "sglang.srt.layers.dp_attention": ["is_dp_attention_enabled"],
    "vllm.model_executor.layers.quantization.qutlass_utils": ["triton_mx_block_rearrange"],
}


@pytest.mark.parametrize("impl", _impls())
def test_upstream_modules_import_through_the_adapter(impl) -> None:
    check_impl(impl, {m: LAUNCHERS.get(m, []) for m in impl.modules})
