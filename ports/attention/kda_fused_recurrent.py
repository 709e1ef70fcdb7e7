"""Helion port of the KDA (Kimi Delta Attention) recurrent decode step (catalog row 6, fla 0.6.0
`fused_recurrent_kda` / `fused_recurrent_kda_fwd_kernel` with use_qk_l2norm_in_kernel=True, output_final_state).

Per sequence b and value head h (query/key head h // (HV / H)), for each token t, state S [K, V] fp32:

    q <- q / sqrt(|q|^2 + 1e-6);  k <- k / sqrt(|k|^2 + 1e-6)
    S <- diag(exp(g_t)) S;  u = beta_t (v_t - S^T k);  S <- S + k u^T;  o_t = scale S^T q
    q, k [B, T, H, K]; v [B, T, HV, V]; g [B, T, HV, K] fp32; beta [B, T, HV]; h0 [B, HV, K, V] fp32
    -> o [B, T, HV, V], final_state [B, HV, K, V] fp32

One launch: a program per (value-column block, value head, sequence) holds the [K, BV] state block in registers
over all T tokens (S^T k and S^T q reduce over K only, so V blocks are independent; the L2 norms of q and k are
recomputed per block, K elements each), fp32 math, reads h0 once and writes the final state once: 2 x 4 B per
state element is the traffic floor at decode (T = 1).  V blocks are the fastest grid dim so the blocks of one
head (which share q, k, g) run together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, sm_count

L2_EPS = 1e-6


@helion.kernel(static_shapes=False)
def kda_recurrent_kernel(
    q: torch.Tensor,  # [B, T, H, K]
    k: torch.Tensor,  # [B, T, H, K]
    v: torch.Tensor,  # [B, T, HV, V]
    g: torch.Tensor,  # [B, T, HV, K] fp32 log decays
    beta: torch.Tensor,  # [B, T, HV]
    h0: torch.Tensor,  # [B, HV, K, V] fp32
    o: torch.Tensor,  # [B, T, HV, V], written
    ht: torch.Tensor,  # [B, HV, K, V] fp32, written
    scale: float,
) -> None:
    B, T, HV, V = v.size(0), v.size(1), v.size(2), v.size(3)
    hl.specialize(q.size(3))  # K: the state block holds whole key columns
    group = HV // q.size(2)
    block_v = hl.register_block_size(V)
    for tile_v, tile_h, tile_b in hl.tile([V, HV, B], block_size=[block_v, 1, 1]):
        i_b = tile_b.begin
        i_h = tile_h.begin
        i_k = i_h // group
        s = h0[i_b, i_h, :, tile_v]  # [K, BV] fp32
        for tile_t in hl.tile(T, block_size=1):
            t = tile_t.begin
            b_q = q[i_b, t, i_k, :].to(torch.float32)  # [K]
            b_k = k[i_b, t, i_k, :].to(torch.float32)
            b_q = b_q * torch.rsqrt(torch.sum(b_q * b_q, dim=0) + L2_EPS) * scale
            b_k = b_k * torch.rsqrt(torch.sum(b_k * b_k, dim=0) + L2_EPS)
            b_v = v[i_b, t, i_h, tile_v].to(torch.float32)  # [BV]
            b_beta = beta[i_b, t, i_h].to(torch.float32)
            s = s * torch.exp(g[i_b, t, i_h, :])[:, None]
            u = b_beta * (b_v - torch.sum(s * b_k[:, None], dim=0))  # [BV]
            s = s + b_k[:, None] * u[None, :]
            o[i_b, t, i_h, tile_v] = torch.sum(s * b_q[:, None], dim=0).to(o.dtype)
        ht[i_b, i_h, :, tile_v] = s


def state_block_config(heads: int, k: int, v: int, max_bv: int = 64) -> dict[str, Any]:
    """V block: the widest (<= max_bv) that still gives >= 2 programs per SM, floor 16 (64-byte fp32 rows);
    4 warps for a [K, BV] tile under 8K elements, 8 from 8K."""
    target = 2 * sm_count()
    bv = pow2_at_most(max_bv, v, floor=16)
    while bv > 16 and heads * -(-v // bv) < target:
        bv //= 2
    return {"block_sizes": [bv], "num_warps": 4 if k * bv < 8192 else 8, "num_stages": 1}


class HelionKdaFusedRecurrent(HelionPort):
    kernel: ClassVar[str] = "kda_fused_recurrent"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: [K, BV] state block in registers over all tokens, in-kernel q/k L2 norm, per-channel decay, "
        "fp32 math; h0 read once, final state written once",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cfg = state_block_config(int(dims["B"]) * int(dims["HV"]), int(dims["K"]), int(dims["V"]))
        return {"kda_recurrent_kernel": cfg}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        args = (inputs["q"], inputs["k"], inputs["v"], inputs["g"], inputs["beta"], inputs["initial_state"],
                out["o"], out["final_state"], float(inputs["scale"]))
        return [Launch(kda_recurrent_kernel, args)]


IMPL = HelionKdaFusedRecurrent()

if __name__ == "__main__":
    check_main(IMPL)
