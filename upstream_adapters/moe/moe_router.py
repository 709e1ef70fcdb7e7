"""Upstream fused MoE router: SGLang 0.5.23 `fused_moe_router_shim` (kernels/ops/moe/router.py), the public
launcher Grok-1 binds as its custom routing function (`functools.partial(fused_moe_router_shim, 30.0)`, called
with renormalize=False).  The shim picks the CUDA-core or tensor-core Triton kernel itself (bs >= 512 or E > 8
and H % BLOCK_SIZE_K == 0 -> tensor-core) and allocates (topk_weights, topk_ids); the timed call then scatters
them into the spec's dense [T, E] buffer (zero fill + scatter, torch).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

SGL_ROUTER = "sglang.kernels.ops.moe.router"
# imported by fused_moe_router_tensorcore at call time (is_dp_attention_enabled): loaded once here through the
# loader, with stand-ins, so the call-time import finds it; dp attention reads as disabled (no server context)
SGL_DP = "sglang.srt.layers.dp_attention"


class SglangMoeRouter(UpstreamImpl):
    kernel = "moe_router"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_ROUTER, SGL_DP)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        shim = self.mod(SGL_ROUTER).fused_moe_router_shim
        dp_attention = bool(self.mod(SGL_DP).is_dp_attention_enabled())
        p = case.params
        x, w = inputs["x"], inputs["router_weight"]
        cap, top_k = float(p["cap"]), int(p["top_k"])

        def fn() -> None:
            weights, ids = shim(cap, x, w, top_k, False)
            out.zero_()
            out.scatter_(1, ids.long(), weights)

        e, h, t = w.shape[0], x.shape[1], x.shape[0]
        block_k = 256 if e < 256 else 64
        tensorcore = (t >= 512 or e > 8) and h % block_k == 0
        config = ({"kernel": "tensorcore", "BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": max(e, 16), "BLOCK_SIZE_K": block_k}
                  if tensorcore else {"kernel": "cudacore"})
        return Prepared(fn, {"config": config, "config_source": "fused_moe_router_shim heuristic",
                             "notes": self.notes("public launcher fused_moe_router_shim (renormalize=False, no "
                                                 f"correction bias; dp attention {dp_attention})",
                                                 "timed call includes the dense scatter")})


IMPLS = [SglangMoeRouter()]
