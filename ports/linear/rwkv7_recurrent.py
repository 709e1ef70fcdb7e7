"""Helion port of the RWKV-7 fused recurrent forward (catalog row 28; fla 0.6.0 `fused_recurrent_rwkv7_fwd_kernel`
via `fused_mul_recurrent_rwkv7`).

Per sequence and head, state S [K, V] fp32, log decay w_t, normalized key kk_t, in-context rate a_t (all [K]):

    S <- diag(exp(w_t)) S - (kk_t * a_t) (kk_t^T S) + k_t v_t^T;   o_t = scale S^T r_t
    r, w, k, kk, a [1, L, H, K]; v [1, L, H, V]; h0 [N, H, K, V] fp32; cu_seqlens [N + 1]
    -> o [1, L, H, V], final_state [N, H, K, V] fp32

One launch: a program per (sequence, head, V block) keeps its [K, BV] state block in registers across the
sequence's tokens (kk^T S reduces over K only, so V blocks are independent), fp32 math; h0 read once, the final
state written once, each token's inputs read once.  Token bounds come from cu_seqlens in the kernel.
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
def rwkv7_recurrent_kernel(
    r: torch.Tensor,  # [L, H, K]
    w: torch.Tensor,  # [L, H, K] log decay
    k: torch.Tensor,  # [L, H, K]
    v: torch.Tensor,  # [L, H, V]
    kk: torch.Tensor,  # [L, H, K]
    a: torch.Tensor,  # [L, H, K]
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
        for i_t in hl.grid(cu[i_n], cu[i_n + 1]):
            b_r = r[i_t, i_h, :].to(torch.float32)
            b_w = w[i_t, i_h, :].to(torch.float32)
            b_k = k[i_t, i_h, :].to(torch.float32)
            b_kk = kk[i_t, i_h, :].to(torch.float32)
            b_a = a[i_t, i_h, :].to(torch.float32)
            b_v = v[i_t, i_h, tile_v].to(torch.float32)  # [BV]
            removal = torch.sum(s * b_kk[:, None], dim=0)  # kk^T S  [BV]
            s = (torch.exp(b_w)[:, None] * s - (b_kk * b_a)[:, None] * removal[None, :]
                 + b_k[:, None] * b_v[None, :])
            o[i_t, i_h, tile_v] = (torch.sum(s * b_r[:, None], dim=0) * scale).to(o.dtype)
        ht[i_n, i_h, :, tile_v] = s


class HelionRWKV7Recurrent(HelionPort):
    kernel: ClassVar[str] = "rwkv7_recurrent"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: [K, BV] state block in registers across each sequence's tokens, fp32 math, h0 read and the "
        "final state written once",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cfg = state_block_config(int(dims["N"]) * int(dims["H"]), int(dims["K"]), int(dims["V"]))
        return {"rwkv7_recurrent_kernel": cfg}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        args = (inputs["r"][0], inputs["w"][0], inputs["k"][0], inputs["v"][0], inputs["kk"][0], inputs["a"][0],
                inputs["h0"], inputs["cu_seqlens"], out["o"][0], out["final_state"], float(inputs["scale"]))
        return [Launch(rwkv7_recurrent_kernel, args)]


IMPL = HelionRWKV7Recurrent()

if __name__ == "__main__":
    check_main(IMPL)
