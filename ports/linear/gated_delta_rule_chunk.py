"""Helion port of the chunked gated delta rule, forward (catalog rows 21, 20; fla `chunk_gated_delta_rule`, vendored
by vLLM 0.33.0 and SGLang 0.5.23; NVlabs GatedDeltaNet's original).

Per sequence and value head (key head h // (HV / H)), state S [K, V], chunks of C = 64 tokens:

    S_t = exp(g_t) S_{t-1} + k_t (beta_t (v_t - exp(g_t) S_{t-1}^T k_t))^T,   o_t = scale S_t^T q_t
    q, k [1, L, H, K]; v [1, L, HV, V]; g, beta [1, L, HV]; h0 [N, HV, K, V] fp32
      -> o [1, L, HV, V], final_state [N, HV, K, V] fp32

Five launches (fla has six: cumsum, kkt, solve_tril, w/u, h, o):
  1. chunk cumsum of g fused into beta K K^T exp(g_i - g_j) (strictly lower, fp32 A scratch),
  2. (I + A)^-1 (the solve_tril port's kernel: 16x16 diagonal blocks by substitution, fp32 block merges; bf16),
  3. the WY products w = X (beta exp(g) k) and u = X (beta v) as tensor-core dots (bf16 w / u scratch),
  4. the state recurrence over chunks, one program per (V block, head, sequence), state fp32 in registers:
     start states h_c (bf16), v_new = u - w h_c (bf16), the final state (fp32) written once,
  5. the chunk output (the chunk_o port's kernel) on q, k, v_new, h_c.
Equal-length packed sequences (checked in prepare); scratch allocated in prepare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, sm_count
from ports.linear.chunk_o import chunk_o_config, chunk_o_kernel
from ports.linear.chunk_scaled_dot_kkt import CHUNK, chunk_warps, equal_lengths, seqs
from ports.linear.solve_tril import solve_tril_kernel


@helion.kernel(static_shapes=False)
def gdn_kkt_kernel(
    k: torch.Tensor,  # [N, T, H, K]
    beta: torch.Tensor,  # [N, T, HV]
    g: torch.Tensor,  # [N, T, HV] fp32 log decay
    g_cum: torch.Tensor,  # [N, T, HV] fp32, written: chunk-local cumsum of g
    a: torch.Tensor,  # [N, T, HV, C] fp32, written
) -> None:
    N, T, HV = beta.size(0), beta.size(1), beta.size(2)
    hl.specialize(k.size(3))
    C = hl.specialize(a.size(3))
    group = HV // k.size(2)
    for tile_h, tile_t, tile_n in hl.tile([HV, T, N], block_size=[1, C, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        cols = tile_t.begin + hl.arange(C)
        cols_in = torch.where(cols < T, cols, T - 1)
        g_r = hl.cumsum(g[i_n, tile_t, i_h].to(torch.float32), 0)  # masked rows load 0: the sum stops there
        g_c = hl.cumsum(torch.where(cols < T, g[i_n, cols_in, i_h].to(torch.float32), 0.0), 0)
        g_cum[i_n, tile_t, i_h] = g_r
        kb = k[i_n, tile_t, i_h // group, :]  # [BT, K]
        kc = k[i_n, cols_in, i_h // group, :]  # [C, K]
        bb = beta[i_n, tile_t, i_h].to(torch.float32)
        val = hl.dot(kb, kc.T) * torch.exp(g_r[:, None] - g_c[None, :]) * bb[:, None]
        keep = (tile_t.index[:, None] > cols[None, :]) & (cols[None, :] < T)
        a[i_n, tile_t, i_h, :] = torch.where(keep, val, 0.0)


@helion.kernel(static_shapes=False)
def gdn_wu_kernel(
    ai: torch.Tensor,  # [N, T, HV, C] (I + A)^-1 per chunk (the solve_tril port's output, model dtype)
    k: torch.Tensor,  # [N, T, H, K]
    v: torch.Tensor,  # [N, T, HV, V]
    beta: torch.Tensor,  # [N, T, HV]
    g_cum: torch.Tensor,  # [N, T, HV] fp32
    w: torch.Tensor,  # [N, T, HV, K], written: (I + A)^-1 (beta exp(g) k)
    u: torch.Tensor,  # [N, T, HV, V], written: (I + A)^-1 (beta v)
) -> None:
    N, T, HV = ai.size(0), ai.size(1), ai.size(2)
    C = hl.specialize(ai.size(3))
    hl.specialize(k.size(3))
    hl.specialize(v.size(3))
    group = HV // k.size(2)
    for tile_h, tile_t, tile_n in hl.tile([HV, T, N], block_size=[1, C, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        cols = tile_t.begin + hl.arange(C)
        cols_in = torch.where(cols < T, cols, T - 1)
        bc = torch.where(cols < T, beta[i_n, cols_in, i_h].to(torch.float32), 0.0)  # [C]
        gc = g_cum[i_n, cols_in, i_h]
        kw = (k[i_n, cols_in, i_h // group, :].to(torch.float32) * (bc * torch.exp(gc))[:, None]).to(k.dtype)
        vw = (v[i_n, cols_in, i_h, :].to(torch.float32) * bc[:, None]).to(v.dtype)
        x = ai[i_n, tile_t, i_h, :].to(k.dtype)  # [BT, C]
        w[i_n, tile_t, i_h, :] = hl.dot(x, kw).to(w.dtype)
        u[i_n, tile_t, i_h, :] = hl.dot(x, vw).to(u.dtype)


@helion.kernel(static_shapes=False)
def gdn_h_kernel(
    k: torch.Tensor,  # [N, T, H, K]
    w: torch.Tensor,  # [N, T, HV, K]
    u: torch.Tensor,  # [N, T, HV, V]
    g_cum: torch.Tensor,  # [N, T, HV] fp32
    h0: torch.Tensor,  # [N, HV, K, V] fp32
    hs: torch.Tensor,  # [N, NT, HV, K, V], written: chunk start states
    v_new: torch.Tensor,  # [N, T, HV, V], written: u - w h_c
    ht: torch.Tensor,  # [N, HV, K, V] fp32, written: final states
    chunk: int,
) -> None:
    N, T, HV, V = u.size(0), u.size(1), u.size(2), u.size(3)
    hl.specialize(k.size(3))
    C = hl.specialize(chunk)
    group = HV // k.size(2)
    block_v = hl.register_block_size(V)
    for tile_v, tile_h, tile_n in hl.tile([V, HV, N], block_size=[block_v, 1, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        b_h = h0[i_n, i_h, :, tile_v]  # [K, BV] fp32
        for tile_t in hl.tile(T, block_size=C):
            hs[i_n, tile_t.id, i_h, :, tile_v] = b_h.to(hs.dtype)
            b_w = w[i_n, tile_t, i_h, :]  # [BT, K]
            b_v = u[i_n, tile_t, i_h, tile_v].to(torch.float32) - hl.dot(b_w, b_h.to(b_w.dtype))
            v_new[i_n, tile_t, i_h, tile_v] = b_v.to(v_new.dtype)
            g_last = g_cum[i_n, min(tile_t.begin + C, T) - 1, i_h]
            g_t = g_cum[i_n, tile_t, i_h]
            scale_t = torch.where(tile_t.index < T, torch.exp(g_last - g_t), 0.0)
            b_vs = (b_v * scale_t[:, None]).to(b_w.dtype)
            b_k = k[i_n, tile_t, i_h // group, :]  # [BT, K]
            b_h = b_h * torch.exp(g_last)
            b_h = hl.dot(b_k.T, b_vs, acc=b_h)
        ht[i_n, i_h, :, tile_v] = b_h


def state_v_block(heads: int, v: int) -> int:
    """V block of the sequential state kernel: 64, halved (floor 16) until every SM has a program."""
    bv = pow2_at_most(64, v, floor=16)
    while bv > 16 and heads * -(-v // bv) < sm_count():
        bv //= 2
    return bv


class HelionGatedDeltaRuleChunk(HelionPort):
    kernel: ClassVar[str] = "gated_delta_rule_chunk"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "5 launches: cumsum+kkt, blocked solve_tril, w/u, state recurrence (fp32 state, final state written once), "
        "chunk output",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        n, t, hv, kd, vd = (int(dims[x]) for x in ("N", "T", "HV", "K", "V"))
        warps = chunk_warps(max(kd, vd))
        return {
            "gdn_kkt_kernel": chunk_warps(kd),
            "solve_tril_kernel": {"num_warps": 4, "num_stages": 1},
            "gdn_wu_kernel": {**warps, "num_stages": 1},
            "gdn_h_kernel": {"block_sizes": [state_v_block(n * hv, vd)], "num_warps": 4, "num_stages": 2},
            "chunk_o_kernel": chunk_o_config(n * -(-t // CHUNK) * hv, vd, kd),
        }

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        n, t = equal_lengths(inputs["cu_seqlens"], q.shape[1])
        hv, kd, vd = v.shape[2], k.shape[3], v.shape[3]
        dev = v.device
        qs, ks, vs = seqs(q, n, t), seqs(k, n, t), seqs(v, n, t)
        beta, g = seqs(inputs["beta"], n, t), seqs(inputs["g"], n, t)
        g_cum = torch.empty((n, t, hv), dtype=torch.float32, device=dev)
        a = torch.empty((n, t, hv, CHUNK), dtype=torch.float32, device=dev)
        ai = torch.empty((n, t, hv, CHUNK), dtype=k.dtype, device=dev)
        w = torch.empty((n, t, hv, kd), dtype=k.dtype, device=dev)
        u = torch.empty((n, t, hv, vd), dtype=v.dtype, device=dev)
        v_new = torch.empty_like(u)
        hs = torch.empty((n, math.ceil(t / CHUNK), hv, kd, vd), dtype=k.dtype, device=dev)
        return [
            Launch(gdn_kkt_kernel, (ks, beta, g, g_cum, a)),
            Launch(solve_tril_kernel, (a.view(n, t, hv, 4, CHUNK // 4), ai.view(n, t, hv, 4, CHUNK // 4))),
            Launch(gdn_wu_kernel, (ai, ks, vs, beta, g_cum, w, u)),
            Launch(gdn_h_kernel, (ks, w, u, g_cum, inputs["h0"], hs, v_new, out["final_state"], CHUNK)),
            Launch(chunk_o_kernel, (qs, ks, v_new, hs, g_cum, seqs(out["o"], n, t), float(inputs["scale"]), CHUNK)),
        ]


IMPL = HelionGatedDeltaRuleChunk()

if __name__ == "__main__":
    check_main(IMPL)
