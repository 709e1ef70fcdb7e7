"""Helion port of the fused recurrent gated delta rule, decode step (catalog row 21; fla 0.6.0
`fused_recurrent_gated_delta_rule` / `fused_recurrent_gated_delta_rule_fwd_kernel`, vendored by vLLM and SGLang).

Per request n and value head h (query/key head h // (HV / H)), one token, state S [K, V] fp32:

    S <- exp(g) S;  u = beta (v - S^T k);  S <- S + k u^T;  o = scale S^T q
    q, k [1, N, H, K]; v [1, N, HV, V]; g, beta [1, N, HV]; h0 [N, HV, K, V] fp32 -> o [1, N, HV, V], ht [N, HV, K, V]

One launch: a program per (request, value head, V block) holds the [K, BV] state column block in registers (the
delta rule's S^T k reduces over K only, so V blocks are independent), fp32 math, reads h0 once and writes the new
state once (2 x 4 B per state element: the traffic).  One token per sequence (the decode contract: cu_seqlens =
0..N, checked in prepare).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, state_block_config


@helion.kernel(static_shapes=False)
def gdn_recurrent_kernel(
    q: torch.Tensor,  # [N, H, K]
    k: torch.Tensor,  # [N, H, K]
    v: torch.Tensor,  # [N, HV, V]
    g: torch.Tensor,  # [N, HV] fp32 log decay
    beta: torch.Tensor,  # [N, HV]
    h0: torch.Tensor,  # [N, HV, K, V] fp32
    o: torch.Tensor,  # [N, HV, V], written
    ht: torch.Tensor,  # [N, HV, K, V] fp32, written
    scale: float,
) -> None:
    N, HV, V = v.size(0), v.size(1), v.size(2)
    hl.specialize(q.size(2))  # K: the state block holds whole key columns
    group = HV // q.size(1)
    block_v = hl.register_block_size(V)
    for tile_n, tile_h, tile_v in hl.tile([N, HV, V], block_size=[1, 1, block_v]):
        i_n = tile_n.begin
        i_h = tile_h.begin
        i_k = i_h // group
        b_q = q[i_n, i_k, :].to(torch.float32)  # [K]
        b_k = k[i_n, i_k, :].to(torch.float32)
        b_v = v[i_n, i_h, tile_v].to(torch.float32)  # [BV]
        decay = torch.exp(g[i_n, i_h].to(torch.float32))
        b_beta = beta[i_n, i_h].to(torch.float32)
        s = h0[i_n, i_h, :, tile_v] * decay  # [K, BV] fp32
        u = b_beta * (b_v - torch.sum(s * b_k[:, None], dim=0))  # [BV]
        s = s + b_k[:, None] * u[None, :]
        o[i_n, i_h, tile_v] = (torch.sum(s * b_q[:, None], dim=0) * scale).to(o.dtype)
        ht[i_n, i_h, :, tile_v] = s


def one_token_per_sequence(cu: torch.Tensor, n: int, what: str) -> None:
    """The decode contract these ports implement: cu_seqlens = 0..N (structure, read once in prepare)."""
    if cu.numel() != n + 1 or not torch.equal(cu.cpu(), torch.arange(n + 1, dtype=cu.dtype)):
        raise ValueError(f"{what} port: one token per sequence expected (cu_seqlens 0..N)")


class HelionGatedDeltaRuleRecurrent(HelionPort):
    kernel: ClassVar[str] = "gated_delta_rule_recurrent"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch per decode step: state block [K, BV] in registers, fp32 math, h0 read once, final state "
        "written once",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cfg = state_block_config(int(dims["N"]) * int(dims["HV"]), int(dims["K"]), int(dims["V"]))
        return {"gdn_recurrent_kernel": cfg}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        one_token_per_sequence(inputs["cu_seqlens"], v.shape[1], self.kernel)
        args = (q[0], k[0], v[0], inputs["g"][0], inputs["beta"][0], inputs["h0"], out["o"][0],
                out["final_state"], float(inputs["scale"]))
        return [Launch(gdn_recurrent_kernel, args)]


IMPL = HelionGatedDeltaRuleRecurrent()

if __name__ == "__main__":
    check_main(IMPL)
