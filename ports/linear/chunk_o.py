"""Helion port of the chunk output of chunked linear attention (catalog row 25; fla `chunk_fwd_o`
fla/ops/common/chunk_o.py, copied by vLLM 0.33.0 and SGLang 0.5.23), Gated DeltaNet scalar gate.

Per sequence n, 64-token chunk c with start state h_c [K, V], value head j (query/key head j // (HV / H)):

    o_i = scale * (exp(g_i) q_i h_c + sum_{s <= i in the chunk} (q_i . k_s) exp(g_i - g_s) v_s)
    q, k [1, L, H, K]; v [1, L, HV, V]; h [1, NC, HV, K, V]; g [1, L, HV] fp32 cumsum -> o [1, L, HV, V]

One program per (V block, value head, chunk, sequence), V blocks fastest (they share the q / k tiles through L2).
Three tensor-core dots per program: q h_c [64, K] x [K, BV], q k^T [64, K] x [K, 64] and the gated, causally
masked scores (rounded to bf16 as the upstreams do) times v [64, BV]; fp32 accumulation, one bf16 rounding of o.
Mostly memory-bound at serving head dims (q, k, v, h read once per V block pair, o written once).  Packed
sequences of equal length (checked in prepare, viewed as [N, T, ..]).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, sm_count
from ports.linear.chunk_scaled_dot_kkt import CHUNK, equal_lengths, seqs


@helion.kernel(static_shapes=False)
def chunk_o_kernel(
    q: torch.Tensor,  # [N, T, H, K]
    k: torch.Tensor,  # [N, T, H, K]
    v: torch.Tensor,  # [N, T, HV, V]
    h: torch.Tensor,  # [N, NT, HV, K, V] chunk start states
    g: torch.Tensor,  # [N, T, HV] fp32 chunk-local cumsum
    o: torch.Tensor,  # [N, T, HV, V], written
    scale: float,
    chunk: int,
) -> None:
    N, T, HV, V = v.size(0), v.size(1), v.size(2), v.size(3)
    hl.specialize(q.size(3))
    C = hl.specialize(chunk)
    group = HV // q.size(2)
    block_v = hl.register_block_size(V)
    for tile_v, tile_h, tile_t, tile_n in hl.tile([V, HV, T, N], block_size=[block_v, 1, C, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        i_k = i_h // group
        cols = tile_t.begin + hl.arange(C)
        cols_in = torch.where(cols < T, cols, T - 1)
        b_q = q[i_n, tile_t, i_k, :]  # [BT, K]
        b_k = k[i_n, cols_in, i_k, :]  # [C, K]
        b_h = h[i_n, tile_t.id, i_h, :, tile_v]  # [K, BV]
        g_r = g[i_n, tile_t, i_h].to(torch.float32)
        g_c = g[i_n, cols_in, i_h].to(torch.float32)
        inter = hl.dot(b_q, b_h.to(b_q.dtype)) * torch.exp(g_r)[:, None]  # [BT, BV]
        s = hl.dot(b_q, b_k.T) * torch.exp(g_r[:, None] - g_c[None, :])  # [BT, C]
        s = torch.where(tile_t.index[:, None] >= cols[None, :], s, 0.0)
        b_v = v[i_n, cols_in, i_h, tile_v]  # [C, BV]
        acc = hl.dot(s.to(b_v.dtype), b_v, acc=inter)
        o[i_n, tile_t, i_h, tile_v] = (acc * scale).to(o.dtype)


V_BLOCK_FLOOR = 64  # see chunk_o_config


def chunk_o_config(programs_per_block: int, v: int, k: int) -> dict[str, Any]:
    """V block 64, halved while the grid leaves SMs without 2 programs, floor V_BLOCK_FLOOR.

    The floor is 64 (no halving) since the H200 check of 2026-12-03: at N=2, T=150 this kernel chose a V block of
    16 and failed the gate there (rel_err 0.54, the within-chunk term looks dropped) while every V block-64 row
    passed; the Triton CPU interpreter runs the block-16 code correctly, so the cause is on the GPU side (suspect:
    Triton's Hopper hazard with a register-held dot operand, triton-lang/triton#9433).  Until
    scripts/probes/chunk_o_blocks.py has shown which blocks are right on a GPU, only the verified block is used."""
    bv = pow2_at_most(64, v, floor=16)
    while bv > V_BLOCK_FLOOR and programs_per_block * -(-v // bv) < 2 * sm_count():
        bv //= 2
    return {"block_sizes": [bv], "num_warps": 4, "num_stages": 2}


class HelionChunkO(HelionPort):
    kernel: ClassVar[str] = "chunk_o"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: q h, q k^T and masked gated scores x v as three tensor-core dots per (V block, head, chunk)",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        chunks = int(dims["N"]) * -(-int(dims["T"]) // CHUNK)
        return {"chunk_o_kernel": chunk_o_config(chunks * int(dims["HV"]), int(dims["V"]), int(dims["K"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q = inputs["q"]
        n, t = equal_lengths(inputs["cu_seqlens"], q.shape[1])
        h = inputs["h"][0]
        h = h.view(n, h.shape[0] // n, *h.shape[1:])
        args = (seqs(q, n, t), seqs(inputs["k"], n, t), seqs(inputs["v"], n, t), h, seqs(inputs["g"], n, t),
                seqs(out, n, t), float(inputs["scale"]), CHUNK)
        return [Launch(chunk_o_kernel, args)]


IMPL = HelionChunkO()

if __name__ == "__main__":
    check_main(IMPL)
