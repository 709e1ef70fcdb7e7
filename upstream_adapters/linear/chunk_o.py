"""Upstream chunk output (`chunk_fwd_o`): fla 0.6.0 (row 25), vLLM 0.33.0's and SGLang 0.5.23's copies.

    fla     fla.ops.common.chunk_o.chunk_fwd_o: h [.., K, V]; decays with exp2, so g is rescaled to log2 in prepare
            (fla's pipeline cumsums g with scale=RCP_LN2 before this step)
    vllm    vllm.third_party.flash_linear_attention.ops.chunk_o.chunk_fwd_o: h [.., V, K] (transposed in prepare);
            writes o through core_attn_out, as vLLM's GDN forward does
    sglang  sglang.kernels.ops.attention.fla.chunk_o.chunk_fwd_o: h [.., V, K] (transposed in prepare)

All varlen; fla / vLLM take precomputed chunk indices (SGLang computes its own inside, as served).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.linear.chunk_o import CHUNK
from upstream_adapters._base import Relayout
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.common.chunk_o"
FLA_INDEX_MOD = "fla.ops.utils.index"
VLLM_MOD = "vllm.third_party.flash_linear_attention.ops.chunk_o"
VLLM_INDEX_MOD = "vllm.third_party.flash_linear_attention.ops.index"
SGL_MOD = "sglang.kernels.ops.attention.fla.chunk_o"

KERNEL = "chunk_o"


def _qkv(inputs: Inputs) -> dict[str, Any]:
    return dict(q=inputs["q"], k=inputs["k"], v=inputs["v"], scale=inputs["scale"])


class FlaChunkO(UpstreamImpl):
    kernel = KERNEL
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD, FLA_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[FLA_MOD].chunk_fwd_o
        cu = inputs["cu_seqlens"]
        rl = Relayout()
        args = _qkv(inputs) | dict(h=inputs["h"], g=rl(lambda: inputs["g"] / math.log(2)), cu_seqlens=cu,
                                   chunk_size=CHUNK,
                                   chunk_indices=mods[FLA_INDEX_MOD].prepare_chunk_indices(cu, CHUNK,
                                                                                           cu_seqlens_cpu=cu.cpu()))

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("g rescaled to log2 in prepare (fla's exp2 kernel)",
                                                 "o copied into the harness buffer")}, relayout=rl.refresh)


class VllmChunkO(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD, VLLM_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[VLLM_MOD].chunk_fwd_o
        cu = inputs["cu_seqlens"].to(torch.int32)
        rl = Relayout()
        args = _qkv(inputs) | dict(h=rl(lambda: inputs["h"].transpose(-1, -2)), g=inputs["g"], cu_seqlens=cu,
                                   chunk_indices=mods[VLLM_INDEX_MOD].prepare_chunk_indices(cu, CHUNK),
                                   chunk_size=CHUNK, core_attn_out=out)

        def fn() -> None:
            launch(**args)

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "vllm autotune (in-kernel)",
                             "notes": self.notes("h transposed to [.., V, K] in prepare; o via core_attn_out")},
                        relayout=rl.refresh)


class SglangChunkO(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    package = "sglang"
    dtypes = ("bf16",)
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[SGL_MOD].chunk_fwd_o
        rl = Relayout()
        args = _qkv(inputs) | dict(h=rl(lambda: inputs["h"].transpose(-1, -2)), g=inputs["g"],
                                   cu_seqlens=inputs["cu_seqlens"], chunk_size=CHUNK)

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "sglang autotune (in-kernel)",
                             "notes": self.notes("h transposed to [.., V, K] in prepare",
                                                 "chunk indices computed inside the launcher, as served",
                                                 "o copied into the harness buffer")}, relayout=rl.refresh)


IMPLS = [FlaChunkO(), VllmChunkO(), SglangChunkO()]
