"""Upstream RWKV-6 fused recurrent: fla 0.6.0 `fused_recurrent_rwkv6` (fla.ops.rwkv6.fused_recurrent), varlen,
fp32 initial / final states.  fla allocates o and the final states; the copies into the spec's named buffers (o,
final_state) are timed."""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.rwkv6.fused_recurrent"


class FlaRWKV6Recurrent(UpstreamImpl):
    kernel = "rwkv6_recurrent"
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].fused_recurrent_rwkv6
        args: dict[str, Any] = dict(r=inputs["r"], k=inputs["k"], v=inputs["v"], w=inputs["w"],
                                    u=inputs["u"], scale=inputs["scale"],
                                    initial_state=inputs["h0"], output_final_state=True,
                                    cu_seqlens=inputs["cu_seqlens"])

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht)

        return Prepared(fn, {"config": {}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("o and final state copied into the harness buffers")})


IMPLS = [FlaRWKV6Recurrent()]
