"""Helion port of gated linear attention, chunked forward (catalog row 23; fla `chunk_gla`, fla/ops/gla/chunk.py).

Per sequence and head, state S [K, V], per-key log forget gate gk_t [K], chunks of C = 64 tokens, b = the
chunk-local cumsum of gk (b_0 = 0 before the chunk):

    S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T,   o_t = scale S_t^T q_t
    chunk form: o_i = scale ((q_i e^{b_i}) S_c + sum_{s <= i} ((q_i e^{b_i}) . (k_s e^{-b_s})) v_s)
                S_{c+1} = diag(e^{b_last}) S_c + (k e^{b_last - b})^T v
    q, k, gk [1, L, H, K]; v [1, L, H, V]; h0 [N, H, K, V] fp32 -> o [1, L, H, V], final_state [N, H, K, V] fp32

Two launches (fla runs cumsum, h, the intra-chunk A and o as four): the state recurrence (one program per
(V block, head, sequence), state fp32 in registers, chunk start states bf16, final state written once) and the
output (one program per (V block, head, chunk, sequence): the gate cumsum recomputed in registers, q e^b h_c,
the gated q k^T and scores x v as tensor-core dots).  Gates are referenced to the chunk start, which is exact
while a chunk's gate sum per key stays above ~-80 (fp32 exp range; the GLA layer's logsigmoid / 16 gates stay
above -20 per chunk).  Equal-length packed sequences (checked in prepare).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main
from ports.linear.chunk_o import chunk_o_config
from ports.linear.chunk_scaled_dot_kkt import CHUNK, equal_lengths, seqs
from ports.linear.gated_delta_rule_chunk import state_v_block


@helion.kernel(static_shapes=False)
def gla_h_kernel(
    k: torch.Tensor,  # [N, T, H, K]
    v: torch.Tensor,  # [N, T, H, V]
    gk: torch.Tensor,  # [N, T, H, K] log gates
    h0: torch.Tensor,  # [N, H, K, V] fp32
    hs: torch.Tensor,  # [N, NT, H, K, V], written: chunk start states
    ht: torch.Tensor,  # [N, H, K, V] fp32, written: final states
    chunk: int,
) -> None:
    N, T, H, V = v.size(0), v.size(1), v.size(2), v.size(3)
    hl.specialize(k.size(3))
    C = hl.specialize(chunk)
    block_v = hl.register_block_size(V)
    for tile_v, tile_h, tile_n in hl.tile([V, H, N], block_size=[block_v, 1, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        b_h = h0[i_n, i_h, :, tile_v]  # [K, BV] fp32
        for tile_t in hl.tile(T, block_size=C):
            hs[i_n, tile_t.id, i_h, :, tile_v] = b_h.to(hs.dtype)
            g_t = gk[i_n, tile_t, i_h, :].to(torch.float32)  # [BT, K], rows past T load 0
            b = hl.cumsum(g_t, 0)
            b_last = torch.sum(g_t, 0)  # [K]
            b_k = k[i_n, tile_t, i_h, :].to(torch.float32) * torch.exp(b_last[None, :] - b)
            b_v = v[i_n, tile_t, i_h, tile_v]  # [BT, BV]
            b_h = b_h * torch.exp(b_last)[:, None]
            b_h = hl.dot(b_k.to(b_v.dtype).T, b_v, acc=b_h)
        ht[i_n, i_h, :, tile_v] = b_h


@helion.kernel(static_shapes=False)
def gla_o_kernel(
    q: torch.Tensor,  # [N, T, H, K]
    k: torch.Tensor,  # [N, T, H, K]
    v: torch.Tensor,  # [N, T, H, V]
    gk: torch.Tensor,  # [N, T, H, K]
    hs: torch.Tensor,  # [N, NT, H, K, V]
    o: torch.Tensor,  # [N, T, H, V], written
    scale: float,
    chunk: int,
) -> None:
    N, T, H, V = v.size(0), v.size(1), v.size(2), v.size(3)
    hl.specialize(q.size(3))
    C = hl.specialize(chunk)
    block_v = hl.register_block_size(V)
    for tile_v, tile_h, tile_t, tile_n in hl.tile([V, H, T, N], block_size=[block_v, 1, C, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        cols = tile_t.begin + hl.arange(C)
        cols_in = torch.where(cols < T, cols, T - 1)
        b_r = hl.cumsum(gk[i_n, tile_t, i_h, :].to(torch.float32), 0)  # [BT, K]
        g_c = gk[i_n, cols_in, i_h, :].to(torch.float32)
        b_c = hl.cumsum(torch.where((cols < T)[:, None], g_c, 0.0), 0)  # [C, K]
        b_q = (q[i_n, tile_t, i_h, :].to(torch.float32) * torch.exp(b_r)).to(q.dtype)
        b_k = (k[i_n, cols_in, i_h, :].to(torch.float32) * torch.exp(-b_c)).to(k.dtype)
        b_h = hs[i_n, tile_t.id, i_h, :, tile_v]  # [K, BV]
        acc = hl.dot(b_q, b_h.to(b_q.dtype))  # [BT, BV]
        s = hl.dot(b_q, b_k.T)  # [BT, C]
        s = torch.where(tile_t.index[:, None] >= cols[None, :], s, 0.0)
        b_v = v[i_n, cols_in, i_h, tile_v]  # [C, BV]
        acc = hl.dot(s.to(b_v.dtype), b_v, acc=acc)
        o[i_n, tile_t, i_h, tile_v] = (acc * scale).to(o.dtype)


class HelionGLAChunk(HelionPort):
    kernel: ClassVar[str] = "gla_chunk"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "2 launches: state recurrence (fp32 state in registers, final state written once) and chunk output (gate "
        "cumsum recomputed in registers, three tensor-core dots)",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        n, t, h, kd, vd = (int(dims[x]) for x in ("N", "T", "H", "K", "V"))
        return {
            "gla_h_kernel": {"block_sizes": [state_v_block(n * h, vd)], "num_warps": 4, "num_stages": 2},
            "gla_o_kernel": chunk_o_config(n * -(-t // CHUNK) * h, vd, kd),
        }

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        n, t = equal_lengths(inputs["cu_seqlens"], q.shape[1])
        h, kd, vd = v.shape[2], k.shape[3], v.shape[3]
        assert isinstance(out, dict)
        o, ht = out["o"], out["final_state"]
        hs = torch.empty((n, math.ceil(t / CHUNK), h, kd, vd), dtype=k.dtype, device=v.device)
        qs, ks, vs, gs = (seqs(inputs[x], n, t) for x in ("q", "k", "v", "gk"))
        return [
            Launch(gla_h_kernel, (ks, vs, gs, inputs["h0"], hs, ht, CHUNK)),
            Launch(gla_o_kernel, (qs, ks, vs, gs, hs, seqs(o, n, t), float(inputs["scale"]), CHUNK)),
        ]


IMPL = HelionGLAChunk()

if __name__ == "__main__":
    check_main(IMPL)
