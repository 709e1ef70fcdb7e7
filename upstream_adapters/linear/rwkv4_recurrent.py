"""Upstream RWKV-4 WKV: fla 0.6.0 `fused_recurrent_rwkv4` (fla.ops.rwkv4.fused_recurrent).  The launcher takes the
raw time_decay w (it applies -exp itself), allocates wkv and a per-step state buffer [B, 3, T, C] (kept for the
backward pass, part of its forward traffic) and returns the last state.  wkv is copied into the harness buffer
(timed)."""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.rwkv4.fused_recurrent"


class FlaRWKV4Recurrent(UpstreamImpl):
    kernel = "rwkv4_recurrent"
    provider = "fla"
    package = "fla"
    dtypes = ("fp32",)
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].fused_recurrent_rwkv4
        args: dict[str, Any] = dict(w=inputs["w"], u=inputs["u"], k=inputs["k"], v=inputs["v"],
                                    state=inputs["state"])

        def fn() -> None:
            wkv, _ = launch(**args)
            out.copy_(wkv)

        return Prepared(fn, {"config": {}, "config_source": "fla launcher defaults",
                             "notes": self.notes("wkv copied into the harness buffer; the launcher also writes "
                                                 "every step's state (its backward cache)")})


IMPLS = [FlaRWKV4Recurrent()]
