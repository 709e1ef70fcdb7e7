"""Upstream chunk-scaled K K^T: vLLM 0.33.0 (row 103) and the fla 0.6.0 original.

    vllm  vllm.third_party.flash_linear_attention.ops.chunk_scaled_dot_kkt.chunk_scaled_dot_kkt_fwd
          (natural-log g, as vLLM's chunk_gated_delta_rule_fwd passes it)
    fla   fla.ops.common.chunk_scaled_dot_kkt.chunk_scaled_dot_kkt_fwd: its kernel decays with exp2, and fla's own
          pipeline feeds it g cumsum-ed with scale=RCP_LN2; the adapter rescales g by 1/ln 2 in prepare likewise.

Both varlen with precomputed chunk indices (each upstream's prepare_chunk_indices), fp32 A; the launchers
allocate A, the copy into the harness buffer is timed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.linear.chunk_scaled_dot_kkt import CHUNK
from upstream_adapters._base import Relayout
from upstream_adapters.linear._common import UpstreamImpl

VLLM_MOD = "vllm.third_party.flash_linear_attention.ops.chunk_scaled_dot_kkt"
VLLM_INDEX_MOD = "vllm.third_party.flash_linear_attention.ops.index"
FLA_MOD = "fla.ops.common.chunk_scaled_dot_kkt"
FLA_INDEX_MOD = "fla.ops.utils.index"

KERNEL = "chunk_scaled_dot_kkt"


class VllmChunkKKT(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD, VLLM_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[VLLM_MOD].chunk_scaled_dot_kkt_fwd
        cu = inputs["cu_seqlens"].to(torch.int32)
        args: dict[str, Any] = dict(k=inputs["k"], g=inputs["g"], beta=inputs["beta"], cu_seqlens=cu,
                                    chunk_indices=mods[VLLM_INDEX_MOD].prepare_chunk_indices(cu, CHUNK),
                                    chunk_size=CHUNK, output_dtype=torch.float32)

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "vllm autotune (in-kernel)",
                             "notes": self.notes("A copied into the harness buffer")})


class FlaChunkKKT(UpstreamImpl):
    kernel = KERNEL
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD, FLA_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[FLA_MOD].chunk_scaled_dot_kkt_fwd
        cu = inputs["cu_seqlens"]
        rl = Relayout()
        args: dict[str, Any] = dict(k=inputs["k"], g=rl(lambda: inputs["g"] / math.log(2)), beta=inputs["beta"],
                                    cu_seqlens=cu,
                                    chunk_size=CHUNK, output_dtype=torch.float32,
                                    chunk_indices=mods[FLA_INDEX_MOD].prepare_chunk_indices(cu, CHUNK,
                                                                                            cu_seqlens_cpu=cu.cpu()))

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("g rescaled to log2 in prepare (fla's exp2 kernel)",
                                                 "A copied into the harness buffer")}, relayout=rl.refresh)


IMPLS = [VllmChunkKKT(), FlaChunkKKT()]
