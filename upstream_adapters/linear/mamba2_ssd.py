"""Upstream Mamba-2 SSD combined forward: mamba_ssm 2.3.2.post1, vLLM 0.33.0, SGLang 0.5.23.

    mamba_ssm  mamba_ssm.ops.triton.ssd_combined.mamba_chunk_scan_combined   batch layout [batch, T, H, P]
               (as mamba_ssm's Mamba2 module calls it), allocates y -> copied into the harness buffer
    vllm       vllm.model_executor.layers.mamba.ops.ssd_combined.mamba_chunk_scan_combined_varlen
               tokens packed [L, H, P], writes `out` in place; chunk metadata (cu_chunk_seqlens, seq_idx per
               chunk, last_chunk_indices) from vLLM's own metadata builder
               (BaseMambaAttentionMetadataBuilder._compute_chunk_metadata), in prepare
    sglang     sglang.kernels.ops.mamba.triton_ops.ssd_combined.mamba_chunk_scan_combined
               tokens packed [1, L, H, P], per-token seq_idx (as SGLang's Mamba2Metadata builds it), writes
               `out` in place, returns the per-sequence final states (return_varlen_states=True, as served)

All with dt_softplus=True, dt_bias, D [H], z=None (the gated RMSNorm is a separate op in vLLM / SGLang), no
initial states (a fresh prefill).
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

MAMBA_MOD = "mamba_ssm.ops.triton.ssd_combined"
VLLM_MOD = "vllm.model_executor.layers.mamba.ops.ssd_combined"
VLLM_META_MOD = "vllm.v1.attention.backends.mamba_attn"
SGL_MOD = "sglang.kernels.ops.mamba.triton_ops.ssd_combined"

KERNEL = "mamba2_ssd"


def _params(inputs: Inputs) -> dict[str, Any]:
    return dict(A=inputs["A"], chunk_size=inputs["chunk_size"], D=inputs["D"], z=None, dt_bias=inputs["dt_bias"],
                dt_softplus=True, dt_limit=(0.0, float("inf")))


def _packed(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """x, dt, B, C with the batch folded into the token dim ([L, ...]); views, no copies (inputs contiguous)."""
    x, dt, b, c = inputs["x"], inputs["dt"], inputs["B"], inputs["C"]
    return x.flatten(0, 1), dt.flatten(0, 1), b.flatten(0, 1), c.flatten(0, 1)


def _query_start_loc(inputs: Inputs, dtype: torch.dtype) -> torch.Tensor:
    batch, t = inputs["x"].shape[:2]
    return torch.arange(0, (batch + 1) * t, t, dtype=dtype, device=inputs["x"].device)


class MambaSSMSSD(UpstreamImpl):
    kernel = KERNEL
    provider = "mamba_ssm"
    package = "mamba_ssm"
    dtypes = ("bf16",)
    modules = (MAMBA_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[MAMBA_MOD].mamba_chunk_scan_combined
        args = dict(x=inputs["x"], dt=inputs["dt"], B=inputs["B"], C=inputs["C"], **_params(inputs))

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {"chunk_size": inputs["chunk_size"]},
                             "config_source": "mamba_ssm autotune (in-kernel)",
                             "notes": self.notes("batch layout; y copied into the harness buffer (no out= argument)")})


class VllmSSD(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD, VLLM_META_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[VLLM_MOD].mamba_chunk_scan_combined_varlen
        builder = mods[VLLM_META_MOD].BaseMambaAttentionMetadataBuilder
        batch = inputs["x"].shape[0]
        chunk = inputs["chunk_size"]
        qsl_cpu = _query_start_loc(inputs, torch.int32).cpu()
        cu_chunk, seq_idx, last_chunk, _ = builder._compute_chunk_metadata(
            chunk, batch, torch.zeros(batch, dtype=torch.int32), qsl_cpu)
        dev = inputs["x"].device
        x, dt, b, c = _packed(inputs)
        args = dict(x=x, dt=dt, B=b, C=c, cu_seqlens=qsl_cpu.to(dev),
                    cu_chunk_seqlens=torch.tensor(cu_chunk, dtype=torch.int32, device=dev),
                    last_chunk_indices=torch.tensor(last_chunk, dtype=torch.int32, device=dev),
                    seq_idx=torch.tensor(seq_idx, dtype=torch.int32, device=dev),
                    out=out.view(x.shape), initial_states=None, state_dtype=torch.float32, **_params(inputs))

        def fn() -> None:
            launch(**args)

        return Prepared(fn, {"config": {"chunk_size": chunk}, "config_source": "vllm autotune (in-kernel)",
                             "notes": self.notes("chunk metadata from vLLM's _compute_chunk_metadata in prepare",
                                                 "final states returned (state_dtype fp32), not written to a cache")})


class SglangSSD(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    package = "sglang"
    dtypes = ("bf16",)
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[SGL_MOD].mamba_chunk_scan_combined
        batch, t = inputs["x"].shape[:2]
        dev = inputs["x"].device
        x, dt, b, c = (a[None] for a in _packed(inputs))
        # Mamba2Metadata.prepare_mixed: seq_idx = repeat_interleave(arange(num_prefills), seq lens)[None]
        seq_idx = torch.repeat_interleave(torch.arange(batch, dtype=torch.int32, device=dev),
                                          torch.full((batch,), t, device=dev))[None]
        args = dict(x=x, dt=dt, B=b, C=c, seq_idx=seq_idx, chunk_indices=None, chunk_offsets=None,
                    cu_seqlens=_query_start_loc(inputs, torch.int32), initial_states=None,
                    out=out.view(x.shape), return_final_states=False, return_varlen_states=True,
                    state_dtype=torch.float32, **_params(inputs))

        def fn() -> None:
            launch(**args)

        return Prepared(fn, {"config": {"chunk_size": inputs["chunk_size"]},
                             "config_source": "sglang autotune (in-kernel)",
                             "notes": self.notes("varlen states returned (fp32), not scattered into a pool")})


IMPLS = [MambaSSMSSD(), VllmSSD(), SglangSSD()]
