"""Upstream GLA fused recurrent: fla 0.6.0 `fused_recurrent_gla` (fla.ops.gla.fused_recurrent; kernel
fla.ops.common.fused_recurrent.fused_recurrent_fwd_kernel), one token per sequence, varlen, fp32 states in and
out.  fla allocates o and the final state; the copies into the spec's named buffers (o, final_state) are timed."""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.gla.fused_recurrent"


class FlaGLARecurrent(UpstreamImpl):
    kernel = "gla_recurrent"
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].fused_recurrent_gla
        args: dict[str, Any] = dict(q=inputs["q"], k=inputs["k"], v=inputs["v"], gk=inputs["gk"],
                                    scale=inputs["scale"], initial_state=inputs["h0"], output_final_state=True,
                                    cu_seqlens=inputs["cu_seqlens"])

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht)

        return Prepared(fn, {"config": {}, "config_source": "fla launcher defaults",
                             "notes": self.notes("o and final state copied into the harness buffers")})


IMPLS = [FlaGLARecurrent()]
