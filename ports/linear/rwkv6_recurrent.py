"""Helion port of the RWKV-6 fused recurrent forward (catalog row 27; fla 0.6.0 `fused_recurrent_rwkv6` /
`fused_recurrent_rwkv6_fwd_kernel`).

Per sequence and head, state S [K, V] fp32, data-dependent log decay w_t [K], bonus u [K]:

    o_t = scale r_t^T (S + diag(u) k_t v_t^T);   S <- diag(exp(w_t)) S + k_t v_t^T
    r, k, w [1, L, H, K]; v [1, L, H, V]; u [H, K]; h0 [N, H, K, V] fp32; cu_seqlens [N + 1]
    -> o [1, L, H, V], final_state [N, H, K, V] fp32

One launch: a program per (sequence, head, V block) keeps its [K, BV] state block in registers across the
sequence's tokens (decay and bonus are per key row, so V blocks are independent), fp32 math; h0 read once,
the final state written once, each token's r/k/w/v read once.  Token bounds come from cu_seqlens in the kernel.
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
def rwkv6_recurrent_kernel(
    r: torch.Tensor,  # [L, H, K]
    k: torch.Tensor,  # [L, H, K]
    v: torch.Tensor,  # [L, H, V]
    w: torch.Tensor,  # [L, H, K] log decay
    u: torch.Tensor,  # [H, K] bonus
    h0: torch.Tensor,  # [N, H, K, V] fp32
    cu: torch.Tensor,  # [N + 1] sequence starts
    o: torch.Tensor,  # [L, H, V] written
    ht: torch.Tensor,  # [N, H, K, V] fp32 written
    scale: float,
) -> None:
    N, H, V = h0.size(0), h0.size(1), h0.size(3)
    hl.specialize(h0.size(2))  # K: whole key columns per state block
    block_v = hl.register_block_size(V)
    for tile_n, tile_h, tile_v in hl.tile([N, H, V], block_size=[1, 1, block_v]):
        i_n = tile_n.begin
        i_h = tile_h.begin
        s = h0[i_n, i_h, :, tile_v]  # [K, BV] fp32
        b_u = u[i_h, :].to(torch.float32)  # [K]
        for i_t in hl.grid(cu[i_n], cu[i_n + 1]):
            b_r = r[i_t, i_h, :].to(torch.float32)
            b_k = k[i_t, i_h, :].to(torch.float32)
            b_w = w[i_t, i_h, :].to(torch.float32)
            b_v = v[i_t, i_h, tile_v].to(torch.float32)  # [BV]
            kv = b_k[:, None] * b_v[None, :]  # [K, BV]
            o[i_t, i_h, tile_v] = (torch.sum((s + b_u[:, None] * kv) * b_r[:, None], dim=0) * scale).to(o.dtype)
            s = torch.exp(b_w)[:, None] * s + kv
        ht[i_n, i_h, :, tile_v] = s


class HelionRWKV6Recurrent(HelionPort):
    kernel: ClassVar[str] = "rwkv6_recurrent"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: [K, BV] state block in registers across each sequence's tokens, fp32 math, h0 read and the "
        "final state written once",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cfg = state_block_config(int(dims["N"]) * int(dims["H"]), int(dims["K"]), int(dims["V"]))
        return {"rwkv6_recurrent_kernel": cfg}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        args = (inputs["r"][0], inputs["k"][0], inputs["v"][0], inputs["w"][0], inputs["u"], inputs["h0"],
                inputs["cu_seqlens"], out["o"][0], out["final_state"], float(inputs["scale"]))
        return [Launch(rwkv6_recurrent_kernel, args)]


IMPL = HelionRWKV6Recurrent()

if __name__ == "__main__":
    check_main(IMPL)
