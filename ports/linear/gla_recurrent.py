"""Helion port of gated linear attention, fused recurrent decode step (catalog row 24; fla 0.6.0
`fused_recurrent_gla` -> fla.ops.common.fused_recurrent `fused_recurrent_fwd_kernel`).

Per request n and head h, one token, state S [K, V] fp32:

    S <- diag(exp(gk)) S + k v^T;   o = scale S^T q
    q, k, gk [1, N, H, K]; v [1, N, H, V]; h0 [N, H, K, V] fp32 -> o [1, N, H, V], final_state [N, H, K, V] fp32

One launch: a program per (request, head, V block) with the [K, BV] state block in registers (GLA's decay is per
key row, so V blocks are independent), fp32 math, h0 read once and the new state written once (the traffic).
One token per sequence (the decode contract: cu_seqlens = 0..N, checked in prepare).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, state_block_config
from ports.linear.gated_delta_rule_recurrent import one_token_per_sequence


@helion.kernel(static_shapes=False)
def gla_recurrent_kernel(
    q: torch.Tensor,  # [N, H, K]
    k: torch.Tensor,  # [N, H, K]
    gk: torch.Tensor,  # [N, H, K] log decay
    v: torch.Tensor,  # [N, H, V]
    h0: torch.Tensor,  # [N, H, K, V] fp32
    o: torch.Tensor,  # [N, H, V], written
    ht: torch.Tensor,  # [N, H, K, V] fp32, written
    scale: float,
) -> None:
    N, H, V = v.size(0), v.size(1), v.size(2)
    hl.specialize(q.size(2))
    block_v = hl.register_block_size(V)
    for tile_n, tile_h, tile_v in hl.tile([N, H, V], block_size=[1, 1, block_v]):
        i_n = tile_n.begin
        i_h = tile_h.begin
        b_q = q[i_n, i_h, :].to(torch.float32)  # [K]
        b_k = k[i_n, i_h, :].to(torch.float32)
        decay = torch.exp(gk[i_n, i_h, :].to(torch.float32))
        b_v = v[i_n, i_h, tile_v].to(torch.float32)  # [BV]
        s = h0[i_n, i_h, :, tile_v] * decay[:, None] + b_k[:, None] * b_v[None, :]  # [K, BV] fp32
        o[i_n, i_h, tile_v] = (torch.sum(s * b_q[:, None], dim=0) * scale).to(o.dtype)
        ht[i_n, i_h, :, tile_v] = s


class HelionGLARecurrent(HelionPort):
    kernel: ClassVar[str] = "gla_recurrent"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch per decode step: state block [K, BV] in registers, fp32 math, h0 read once, final state "
        "written once",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cfg = state_block_config(int(dims["N"]) * int(dims["H"]), int(dims["K"]), int(dims["V"]))
        return {"gla_recurrent_kernel": cfg}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        one_token_per_sequence(inputs["cu_seqlens"], inputs["v"].shape[1], self.kernel)
        args = (inputs["q"][0], inputs["k"][0], inputs["gk"][0], inputs["v"][0], inputs["h0"], out["o"][0],
                out["final_state"], float(inputs["scale"]))
        return [Launch(gla_recurrent_kernel, args)]


IMPL = HelionGLARecurrent()

if __name__ == "__main__":
    check_main(IMPL)
