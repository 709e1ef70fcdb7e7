"""Helion port of the RWKV-4 WKV fused recurrent forward (catalog row 29; fla 0.6.0 `fused_recurrent_rwkv4` /
`fused_recurrent_rwkv4_forward_kernel`).

Channel-wise, in the numerically stable (alpha, beta, eps) form (A = alpha e^eps, B = beta e^eps), w' = -exp(w):

    wkv_t = (A + e^{u + k_t} v_t) / (B + e^{u + k_t});   A <- e^{w'} A + e^{k_t} v_t;   B <- e^{w'} B + e^{k_t}
    w, u [C] fp32; k, v [B, T, C] fp32; state [B, 3, 1, C] fp32 -> wkv [B, T, C] fp32

One launch: a program per (batch row, channel block) carries its (alpha, beta, eps) vectors in registers through
the T steps, reading k, v and writing wkv once per step; unlike the upstream it does not store every step's state
(a backward-pass cache the spec does not ask for), so the traffic is the 3 x B x T x C activations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, sm_count


@helion.kernel(static_shapes=False)
def rwkv4_recurrent_kernel(
    w: torch.Tensor,  # [C] raw time_decay
    u: torch.Tensor,  # [C] time_first
    k: torch.Tensor,  # [B, T, C]
    v: torch.Tensor,  # [B, T, C]
    state: torch.Tensor,  # [B, 3, 1, C] (alpha, beta, eps)
    wkv: torch.Tensor,  # [B, T, C] written
) -> None:
    B, T, C = k.size(0), k.size(1), k.size(2)
    for tile_b, tile_c in hl.tile([B, C], block_size=[1, None]):
        i_b = tile_b.begin
        decay = -torch.exp(w[tile_c].to(torch.float32))
        b_u = u[tile_c].to(torch.float32)
        alpha = state[i_b, 0, 0, tile_c].to(torch.float32)
        beta = state[i_b, 1, 0, tile_c].to(torch.float32)
        eps = state[i_b, 2, 0, tile_c].to(torch.float32)
        for i_t in hl.grid(T):
            kt = k[i_b, i_t, tile_c].to(torch.float32)
            vt = v[i_b, i_t, tile_c].to(torch.float32)
            ukt = b_u + kt
            tau = torch.maximum(ukt, eps)
            e1 = torch.exp(eps - tau)
            e2 = torch.exp(ukt - tau)
            wkv[i_b, i_t, tile_c] = ((e1 * alpha + e2 * vt) / (e1 * beta + e2)).to(wkv.dtype)
            w_eps = decay + eps
            eps = torch.maximum(w_eps, kt)
            f1 = torch.exp(w_eps - eps)
            f2 = torch.exp(kt - eps)
            alpha = f1 * alpha + f2 * vt
            beta = f1 * beta + f2


class HelionRWKV4Recurrent(HelionPort):
    kernel: ClassVar[str] = "rwkv4_recurrent"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp32",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: (alpha, beta, eps) carried in registers through T; no per-step state cache written",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        """Channel block bc (halved to 32 while under 2 programs per SM: 80 one-warp programs at C = 2560, B = 1)
        + 8 stages on the T loop.  Each step loads only [bc] of k and v, which do not depend on the carried state,
        but Triton software-pipelines a dot-free loop only when the loop itself has a stage count (the
        kernel-wide num_stages does nothing here): with it the next 7 steps' k and v are in flight (cp.async,
        ~2 KB of shared memory at bc = 32) behind the exp chain of the current one, instead of one load latency
        per token (thousands of tokens a program at prefill)."""
        b, c = int(dims["B"]), int(dims["C"])
        bc = pow2_at_most(256, c, floor=32)
        while bc > 32 and b * -(-c // bc) < 2 * sm_count():  # a sequential scan: parallelism over channels first
            bc //= 2
        return {"rwkv4_recurrent_kernel": {"block_sizes": [bc], "num_warps": max(1, min(4, bc // 64)),
                                           "num_stages": 2, "range_num_stages": [0, 8]}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        args = (inputs["w"], inputs["u"], inputs["k"], inputs["v"], inputs["state"], out)
        return [Launch(rwkv4_recurrent_kernel, args)]


IMPL = HelionRWKV4Recurrent()

if __name__ == "__main__":
    check_main(IMPL)
