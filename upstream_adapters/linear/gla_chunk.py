"""Upstream GLA chunked forward: fla 0.6.0 `chunk_gla` (fla.ops.gla.chunk), varlen with cu_seqlens (and its CPU
copy, which fla uses to build chunk indices without a device sync), per-sequence initial states, final states
produced.  The spec's named outputs are o and final_state [N, H, K, V] fp32: fla allocates both; the copies into
the harness buffers are timed."""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.gla.chunk"


class FlaGLAChunk(UpstreamImpl):
    kernel = "gla_chunk"
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].chunk_gla
        cu = inputs["cu_seqlens"]
        args: dict[str, Any] = dict(q=inputs["q"], k=inputs["k"], v=inputs["v"], g=inputs["gk"],
                                    scale=inputs["scale"], initial_state=inputs["h0"], output_final_state=True,
                                    cu_seqlens=cu, cu_seqlens_cpu=cu.cpu())

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht)

        return Prepared(fn, {"config": {"chunk_size": 64}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("o and final state copied into the harness buffers")})


IMPLS = [FlaGLAChunk()]
