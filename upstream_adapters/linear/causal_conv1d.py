"""Upstream causal conv1d, prefill: vLLM 0.33.0 `causal_conv1d_fn`
(vllm.model_executor.layers.mamba.ops.causal_conv1d), called as MambaMixer2 calls it; SGLang 0.5.23's Triton
`causal_conv1d_fn` (sglang.kernels.ops.mamba.causal_conv1d_triton, catalog row 101) as SGLang's Mamba mixer calls
it (seq_lens_cpu list, cache lines 0..batch-1 of a [slots, dim, W - 1] pool, PAD_SLOT_ID -1).

vLLM:

x is passed channel-last ([dim, L] view of the token-major input, the `.transpose(0, 1)` serving passes); the
conv-state cache is vLLM's default SD layout ([slots, W - 1, dim] seen through a transpose as [slots, dim, W - 1]);
cache lines 1..batch (0 is NULL_BLOCK_ID); has_initial_state all False (fresh prompts: the state is written, not
read, so repeated calls are identical); the launch metadata (per-program sequence and chunk offsets) comes from
vLLM's own `compute_causal_conv1d_metadata` in prepare, as the attention-metadata builder precomputes it (without
it the launcher syncs the device to read sequence lengths).  The launcher allocates y channel-last; the copy into
the harness's token-major buffer is timed, and so is the copy of the written cache lines 1..batch into the spec's
conv_state output.  SGLang writes the spec's conv_state buffer directly (its cache lines 0..batch-1).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

VLLM_MOD = "vllm.model_executor.layers.mamba.ops.causal_conv1d"
VLLM_META_MOD = "vllm.v1.attention.backends.utils"
SGL_MOD = "sglang.kernels.ops.mamba.causal_conv1d_triton"


def conv_state_pool(slots: int, dim: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """vLLM's SD conv-state layout [slots, W - 1, dim] seen as [slots, dim, W - 1] (dim innermost)."""
    return torch.zeros((slots, width - 1, dim), dtype=dtype, device=device).transpose(-1, -2)


class VllmCausalConv1d(UpstreamImpl):
    kernel = "causal_conv1d"
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD, VLLM_META_MOD)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[VLLM_MOD].causal_conv1d_fn
        x, w = inputs["x"], inputs["weight"]
        qsl = inputs["query_start_loc"]
        batch = qsl.numel() - 1
        dim, width = w.shape
        nums_dict, batch_ptr, offset_ptr = mods[VLLM_META_MOD].compute_causal_conv1d_metadata(
            qsl.cpu(), device=x.device)
        metadata = SimpleNamespace(nums_dict=nums_dict, batch_ptr=batch_ptr, token_chunk_offset_ptr=offset_ptr)
        pool = conv_state_pool(batch + 1, dim, width, x.dtype, x.device)
        args: dict[str, Any] = dict(
            x=x.t(), weight=w, bias=inputs["bias"], conv_states=pool,
            query_start_loc=qsl, cache_indices=torch.arange(1, batch + 1, dtype=torch.int32, device=x.device),
            has_initial_state=torch.zeros(batch, dtype=torch.bool, device=x.device), activation="silu",
            metadata=metadata,
        )

        def fn() -> None:
            out["y"].copy_(launch(**args).t())
            out["conv_state"].copy_(pool[1:])  # the written cache lines into the spec's conv_state output

        return Prepared(fn, {"config": {"BLOCK_M": 8, "BLOCK_N": 256, "num_stages": 2},
                             "config_source": "vllm launcher constants",
                             "notes": self.notes("metadata from compute_causal_conv1d_metadata in prepare",
                                                 "fresh prompts (has_initial_state=False)",
                                                 "channel-last y copied into the token-major harness buffer",
                                                 "conv-state cache lines copied into the harness buffer")})


class SglangCausalConv1d(UpstreamImpl):
    kernel = "causal_conv1d"
    provider = "sglang"
    package = "sglang"
    dtypes = ("bf16",)
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[SGL_MOD].causal_conv1d_fn
        x, w = inputs["x"], inputs["weight"]
        qsl = inputs["query_start_loc"]
        batch = qsl.numel() - 1
        dim, width = w.shape
        args: dict[str, Any] = dict(
            x=x.t(), weight=w, bias=inputs["bias"],
            conv_states=out["conv_state"],  # [batch, dim, W - 1]: cache lines 0..batch-1, written by the kernel
            query_start_loc=qsl, seq_lens_cpu=qsl.diff().tolist(),
            cache_indices=torch.arange(batch, dtype=torch.int32, device=x.device),
            has_initial_state=torch.zeros(batch, dtype=torch.bool, device=x.device), activation="silu",
        )

        def fn() -> None:
            out["y"].copy_(launch(**args).t())

        return Prepared(fn, {"config": {}, "config_source": "sglang launcher constants",
                             "notes": self.notes("fresh prompts (has_initial_state=False)",
                                                 "channel-last y copied into the token-major harness buffer")})


IMPLS = [VllmCausalConv1d(), SglangCausalConv1d()]
