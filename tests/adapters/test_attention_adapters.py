"""Attention-family adapters on a machine without a GPU: every impl says why it cannot run, and each upstream
module it launches imports through the loader where that upstream's cache tree exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness import registry
from tests.adapters._probe import check_impl
from upstream_adapters._loader import default_cache_dir, read_lock
from upstream_adapters.attention._common import UpstreamImpl

KERNELS = ("merge_attn_states", "merge_states", "merge_state_in_place", "paged_decode_attention",
           "prefill_attention", "unified_attention", "kda_gate",
           "kda_fused_recurrent", "kda_chunk",
           "mla_decode_attention", "batch_indices_positions")


def _impls() -> list[UpstreamImpl]:
    out = []
    for kernel in KERNELS:
        for provider in registry.providers(kernel):
            if provider != registry.HELION:
                out.append(registry.get_impl(kernel, provider))
    return out


IMPLS = _impls()


def _id(impl: UpstreamImpl) -> str:
    return f"{impl.kernel}-{impl.provider}"


def test_every_kernel_has_its_providers():
    got = {(i.kernel, i.provider) for i in IMPLS}
    assert {("merge_attn_states", "vllm"), ("merge_attn_states", "flashinfer"), ("merge_attn_states", "sglang"),
            ("merge_states", "flashinfer"),
            ("merge_state_in_place", "flashinfer"), ("paged_decode_attention", "vllm"),
            ("paged_decode_attention", "sglang"), ("prefill_attention", "vllm"),
            ("prefill_attention", "sglang"), ("unified_attention", "vllm"),
            ("unified_attention", "sglang"), ("kda_gate", "fla"),
            ("kda_fused_recurrent", "fla"), ("kda_chunk", "fla"),
            ("kda_chunk", "sglang"), ("mla_decode_attention", "vllm"),
            ("mla_decode_attention", "sglang"), ("mla_decode_attention", "flashmla"),
            ("batch_indices_positions", "flashinfer")} <= got
    for impl in IMPLS:
        assert impl.kernel in registry.specs()
        assert set(impl.dtypes or ()) <= set(registry.specs()[impl.kernel].dtypes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason; this machine has a GPU")
@pytest.mark.parametrize("impl", IMPLS, ids=_id)
def test_available_gives_a_one_line_reason_without_gpu(impl):
    reason = impl.available()
    assert isinstance(reason, str) and reason and "\n" not in reason
    assert "CUDA" in reason


#: the upstream functions each adapter launches (by module): a rename upstream must fail here, not on the GPU
LAUNCHERS = {
    "vllm.v1.attention.ops.triton_merge_attn_states": ("merge_attn_states",),
    "flashinfer.triton.cascade": ("merge_state", "merge_states", "merge_state_in_place"),
    "vllm.v1.attention.ops.triton_decode_attention": ("decode_attention_fwd",),
    "vllm.v1.attention.ops.triton_prefill_attention": ("context_attention_fwd", "get_block_size"),
    "vllm.v1.attention.ops.triton_unified_attention": ("unified_attention",),
    "sglang.kernels.ops.attention.decode_attention": ("decode_attention_fwd",),
    "sglang.kernels.ops.attention.metadata": ("get_num_kv_splits_triton",),
    "sglang.kernels.ops.attention.prefill_attention": ("context_attention_fwd",),
    "fla.ops.kda.gate": ("fused_kda_gate",),
    "fla.ops.kda.fused_recurrent": ("fused_recurrent_kda",),
    "fla.ops.kda.chunk": ("chunk_kda",),
    "sglang.kernels.ops.attention.fla.kda": ("chunk_kda",),
    "sglang.kernels.ops.attention.merge_state": ("merge_state_triton",),
    "flashinfer.page": ("get_batch_indices_positions",),
    "sglang.kernels.ops.attention.extend_attention": ("extend_attention_fwd",),
}


#: upstreams whose import probe lives in tests/adapters/test_attention_github_adapters.py (FlashMLA's benchmark
#: script needs its adapter's extension stand-in and allocates CUDA tensors at import)
SEPARATE_PROBES = ("flashmla",)




@pytest.mark.parametrize("impl", [i for i in IMPLS if i.package not in SEPARATE_PROBES], ids=_id)
def test_upstream_modules_import_through_the_adapter(impl) -> None:
    result = check_impl(impl, {m: LAUNCHERS[m] for m in impl.modules})
    assert result["version"] == read_lock().entry(impl.package).version


def _cached_source(name: str, rel: str) -> Path:
    """A file of the cache tree, read as text only: load() in this process would put the real package on
    sys.path, which tests/loader's fake packages must not see."""
    path = default_cache_dir() / name / rel
    if not path.exists():
        pytest.skip(f"{name} cache tree absent ({path})")
    return path


def test_restated_vllm_backend_constants_match_source():
    """unified_attention's adapter restates two constants of vLLM's triton_attn backend (whose module pulls in
    the whole config stack); they must match the pinned source text."""
    from upstream_adapters.attention import unified_attention as ua

    path = _cached_source("vllm", "vllm/v1/attention/backends/triton_attn.py")
    text = path.read_text()
    assert f"MIN_LAUNCH_GRID_SIZE_2D = {ua.MIN_LAUNCH_GRID_SIZE_2D}" in text
    assert f"NUM_PAR_SOFTMAX_SEGMENTS = {ua.NUM_PAR_SOFTMAX_SEGMENTS}" in text


def test_restated_sglang_mla_split_cap_matches_source():
    """mla_decode_attention's SGLang adapter restates the MLA split cap of SGLang's Triton backend."""
    from upstream_adapters.attention import mla_decode_attention as mla

    text = _cached_source("sglang", "sglang/srt/layers/attention/triton_backend.py").read_text()
    assert f"_MLA_DECODE_MIN_BLOCK_KV = {mla.MLA_DECODE_MIN_BLOCK_KV}" in text
    assert "return max(base_max_kv_splits, min(sm_cap, ctx_cap))" in text
    assert mla.sglang_mla_max_kv_splits(132) == 256 and mla.sglang_mla_max_kv_splits(0) == 8
