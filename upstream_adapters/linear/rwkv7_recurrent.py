"""Upstream RWKV-7 fused recurrent: fla 0.6.0 `fused_mul_recurrent_rwkv7` (fla.ops.rwkv7.fused_recurrent), the
launcher of the catalog's `fused_recurrent_rwkv7_fwd_kernel` (the public `fused_recurrent_rwkv7` now routes to
the generalized DPLR kernel instead).  Varlen, fp32 states; o and the final states copied into the spec's named
buffers (timed)."""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.rwkv7.fused_recurrent"


class FlaRWKV7Recurrent(UpstreamImpl):
    kernel = "rwkv7_recurrent"
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].fused_mul_recurrent_rwkv7
        args: dict[str, Any] = dict(r=inputs["r"], w=inputs["w"], k=inputs["k"], v=inputs["v"], kk=inputs["kk"],
                                    a=inputs["a"], scale=inputs["scale"], initial_state=inputs["h0"],
                                    output_final_state=True, cu_seqlens=inputs["cu_seqlens"])

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht)

        return Prepared(fn, {"config": {}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("fused_mul_recurrent_rwkv7 (the catalog kernel's launcher)",
                                                 "o and final state copied into the harness buffers")})


IMPLS = [FlaRWKV7Recurrent()]
