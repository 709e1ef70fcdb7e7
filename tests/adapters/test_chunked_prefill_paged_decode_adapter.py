"""vLLM chunked_prefill_paged_decode adapter through the gate's prepare-rewrite check, on CPU.

The upstream launcher needs a GPU (its rocm platform import reads the arch; its prefill kernel does not run in
TRITON_INTERPRET), so a stand-in launcher with the upstream's keyword signature reads what the upstream reads:
a prefill chunk's own K/V from the packed key/value, its context and every decode token from the cache.  That is
enough to show which K/V the adapter hands over after the gate rewrites the inputs (seen on the H200: the
re-check failed with rel_err 4.5e-01 when the adapter passed the spec's packed key/value as they were)."""

from __future__ import annotations

import types

import pytest
import torch

from harness import correctness, registry
from harness.specs.attention._common import attention_reference
from harness.specs.attention.chunked_prefill_paged_decode import gather_legacy
from harness.worker import rewrite_inputs
from upstream_adapters.attention.chunked_prefill_paged_decode import ROCM_PLATFORM_MOD, VLLM_MOD


def _launcher(*, query, key, value, output, kv_cache_dtype, key_cache, value_cache, block_table, query_start_loc,
              seq_lens, max_seq_len, max_query_len, k_scale, v_scale, alibi_slopes=None, sliding_window=None,
              sm_scale=None, output_scale=None, sinks=None, is_block_table_ptr=False,
              use_interleaved_v_cache=False, causal=True) -> None:
    cu = query_start_loc.tolist()
    for b, n in enumerate(seq_lens.tolist()):
        ql = cu[b + 1] - cu[b]
        if max_query_len > 1 and ql > 1:  # prefix_prefill: context from the cache, the chunk from key/value
            kc, vc = gather_legacy(key_cache, value_cache, block_table[b], n - ql)
            k, v = torch.cat([kc, key[cu[b]:cu[b + 1]]]), torch.cat([vc, value[cu[b]:cu[b + 1]]])
        else:  # kernel_paged_attention_2d: everything from the cache
            k, v = gather_legacy(key_cache, value_cache, block_table[b], n)
        o = attention_reference(query[cu[b]:cu[b + 1]], k, v, sm_scale, causal=causal)
        output[cu[b]:cu[b + 1]] = o.to(output.dtype)


class _Up:
    version = "stand-in"

    def import_module(self, name: str, stub_missing: bool = False):
        assert name == ROCM_PLATFORM_MOD
        return types.SimpleNamespace(use_rocm_custom_paged_attention=lambda *a: False, _GCN_ARCH="")


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_rewritten_inputs_reach_the_launcher(monkeypatch, dtype):
    spec = registry.specs()["chunked_prefill_paged_decode"]
    impl = type(registry.get_impl("chunked_prefill_paged_decode", "vllm"))()
    monkeypatch.setattr(impl, "load_modules",
                        lambda: {VLLM_MOD: types.SimpleNamespace(chunked_prefill_paged_decode=_launcher)})
    impl._up = _Up()
    case = spec.test_cases()[0]  # decodes + ragged prefill chunks on a context
    dev = torch.device("cpu")
    inputs = spec.make_inputs(case, dtype, dev, 3)
    out = spec.make_output(inputs, case, dtype)
    tol = spec.tolerance(dtype)
    prepared = impl.prepare(inputs, out, case, dtype)
    first = correctness.check_call(prepared.fn, out, spec.reference(inputs, case, dtype), tol)
    assert first.ok, first.reason
    # what harness.worker.run_row does next: same storage, fresh values, the adapter's relayout, re-check
    assert rewrite_inputs(spec, inputs, case, dtype, dev, 3 ^ 0x5EED) == []
    if prepared.relayout is not None:
        prepared.relayout()
    again = correctness.check_call(prepared.fn, out, spec.reference(inputs, case, dtype), tol)
    assert again.ok, again.reason
