"""Helion port of the Mamba-2 SSD chunk scan, combined forward (catalog rows 30 `_chunk_scan_fwd`, 96
`_state_passing_fwd`, 99 `_chunk_state_fwd` run by mamba_ssm `mamba_chunk_scan_combined`; 100 vLLM / 101 SGLang
`mamba_chunk_scan_combined(_varlen)`).

Per sequence, head h (group g = h // (H / G)), state S [P, N] from zero, Q-token chunks (Q = the model's chunk):

    d_t = softplus(dt_t + dt_bias_h);  S_t = exp(d_t A_h) S_{t-1} + d_t x_t B_t^T;  y_t = S_t C_t + D_h x_t
    x [b, T, H, P]; dt [b, T, H]; A, D, dt_bias [H] fp32; B, C [b, T, G, N] -> y [b, T, H, P]

Four launches (mamba_ssm runs five: cumsum, bmm C B^T, chunk state, state passing, chunk scan):
  1. per (head, chunk): d and the chunk-local cumsum a of d A (fp32 scratch [b, T, H], tiny),
  2. chunk states, every chunk in parallel: one program per (P block, N block, chunk, head, sequence) computes the
     chunk's own state x^T (B w), w_s = d_s exp(a_last - a_s), as tensor-core dots over Q sub-blocks (fp32
     accumulation) into an fp32 scratch [b, NC, H, P, N], chunk c's state in slot c + 1.  The last chunk's state
     feeds no output, so the grid covers chunks 0..NC-2 (all full),
  3. state passing, serial over the chunks but elementwise (memory-bound): one program per ([P N] slice, head,
     sequence) rewrites the scratch in place into chunk start states, S_0 = 0, S_c = exp(a_last[c-1]) S_{c-1} +
     slot c.  (A single fused launch that walked the chunks doing the dots serially left few programs and NC
     dependent heavy steps each: 0.67x of mamba_ssm at mamba2-2.7b T=2048.)  Launches 2 and 3 are skipped when
     a sequence is one chunk (the scratch is then zeros),
  4. chunk scan per (P block, head, row block, sequence): exp(a_i) C_i S_start^T, the intra-chunk
     (C B^T) * exp(a_i - a_s) d_s (causal) times x over the chunk's column blocks, plus D x; bf16 dot operands,
     fp32 accumulation.
The row block of launch 4 divides Q (host key `block_m`); the chunk Q is the case's (`chunk` host key).  Two
options probed on the H200 (scripts/probes/round3_mamba2_ssd.sh, output in
ports/configs/h200/round3_mamba2_ssd.probe-20261204.txt): `start_bf16`, on by default, stores the start states in
bf16 (launch 3 writes a second buffer; the scan rounds them to bf16 anyway: 125.7 -> 120.5 us at mamba2-2.7b T=2048),
and an `ssd_cb_kernel` entry adds a launch computing C B^T once per (chunk, group) for the scan to read
(`use_cb`), as vLLM does: no gain alone, but with 32-column scan blocks it is the default since round 4
(scripts/probes/round4.sh: T=16384 746 -> 696 us); without the entry the scan recomputes it per head.  The scan
runs unpipelined (num_stages 1: 168 registers and 32.8 KB of shared memory give 3 CTAs per SM where 2 stages'
82.4 KB gave 2; its launch 90.8 -> 76.8 us).
Sequences are the batch rows (the spec's vLLM/SGLang varlen layouts are reshaped to [b, T] by their adapters), so
no chunk spans two sequences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch
import torch.nn.functional as F

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most


@helion.kernel(static_shapes=False)
def ssd_cumsum_kernel(
    dt: torch.Tensor,  # [b, T, H]
    dt_bias: torch.Tensor,  # [H] fp32
    a_log: torch.Tensor,  # [H] fp32 (A, negative)
    d_out: torch.Tensor,  # [b, T, H] fp32, written: softplus(dt + dt_bias)
    a_cum: torch.Tensor,  # [b, T, H] fp32, written: chunk-local cumsum of d A
    chunk: int,
) -> None:
    B_, T, H = dt.size(0), dt.size(1), dt.size(2)
    Q = hl.specialize(chunk)
    for tile_h, tile_t, tile_b in hl.tile([H, T, B_], block_size=[1, Q, 1]):
        i_h = tile_h.begin
        i_b = tile_b.begin
        d = F.softplus(dt[i_b, tile_t, i_h].to(torch.float32) + dt_bias[i_h])
        d = torch.where(tile_t.index < T, d, 0.0)
        d_out[i_b, tile_t, i_h] = d
        a_cum[i_b, tile_t, i_h] = hl.cumsum(d * a_log[i_h], 0)


@helion.kernel(static_shapes=False)
def ssd_state_kernel(
    x: torch.Tensor,  # [b, T, H, P]
    bm: torch.Tensor,  # [b, T, G, N]
    d_in: torch.Tensor,  # [b, T, H] fp32
    a_cum: torch.Tensor,  # [b, T, H] fp32
    states: torch.Tensor,  # [b, NC, H, P, N] fp32, written: slot c + 1 <- chunk c's own state (c < NC - 1)
    chunk: int,
) -> None:
    B_, T, H, P = x.size(0), x.size(1), x.size(2), x.size(3)
    Q = hl.specialize(chunk)
    group = H // bm.size(2)
    block_p = hl.register_block_size(P)
    block_n = hl.register_block_size(bm.size(3))
    block_q = hl.register_block_size(Q)
    # every chunk but the last (whose state no output needs); those are all full, T > Q here
    for tile_p, tile_n, tile_c, tile_h, tile_b in hl.tile(
        [P, bm.size(3), T - Q, H, B_], block_size=[block_p, block_n, Q, 1, 1]
    ):
        i_h = tile_h.begin
        i_b = tile_b.begin
        a_last = a_cum[i_b, tile_c.begin + Q - 1, i_h]
        acc = hl.zeros([tile_p, tile_n], dtype=torch.float32)
        for tile_q in hl.tile(Q, block_size=block_q):
            pos = tile_c.begin + tile_q.index
            pos_in = torch.where(tile_q.index < Q, pos, tile_c.begin)  # a block_q not dividing Q
            wgt = d_in[i_b, pos_in, i_h] * torch.exp(a_last - a_cum[i_b, pos_in, i_h])
            wgt = torch.where(tile_q.index < Q, wgt, 0.0)  # [BQ]
            xs = x[i_b, pos_in, i_h, tile_p]  # [BQ, BP]
            bs = (bm[i_b, pos_in, i_h // group, tile_n].to(torch.float32) * wgt[:, None]).to(x.dtype)
            acc = hl.dot(xs.T, bs, acc=acc)
        states[i_b, tile_c.id + 1, i_h, tile_p, tile_n] = acc


@helion.kernel(static_shapes=False)
def ssd_state_passing_kernel(
    a_cum: torch.Tensor,  # [b, T, H] fp32
    states: torch.Tensor,  # [b, NC, H, P * N] fp32: chunk states (slots 1..NC-1)
    s_out: torch.Tensor,  # [b, NC, H, P * N], written: chunk start states (`states` itself, or a bf16 copy)
    chunk: int,
) -> None:
    B_, NC, H, M = states.size(0), states.size(1), states.size(2), states.size(3)
    Q = hl.specialize(chunk)
    for tile_m, tile_h, tile_b in hl.tile([M, H, B_], block_size=[None, 1, 1]):
        i_h = tile_h.begin
        i_b = tile_b.begin
        s = hl.zeros([tile_m], dtype=torch.float32)
        s_out[i_b, 0, i_h, tile_m] = s.to(s_out.dtype)
        for tile_c in hl.tile(1, NC, block_size=1):
            c = tile_c.begin
            own = states[i_b, c, i_h, tile_m]  # loaded first: in flight together with the decay's load
            # start of chunk c = start of chunk c - 1 decayed over that chunk, plus chunk c - 1's own state; carried
            # in fp32, stored in s_out's dtype (the scan rounds it to bf16 for its dot either way)
            s = s * torch.exp(a_cum[i_b, c * Q - 1, i_h]) + own
            s_out[i_b, c, i_h, tile_m] = s.to(s_out.dtype)


@helion.kernel(static_shapes=False)
def ssd_cb_kernel(
    cm: torch.Tensor,  # [b, T, G, N]
    bm: torch.Tensor,  # [b, T, G, N]
    cb: torch.Tensor,  # [b, NC * Q, G, Q] fp32, written: row r, column j <- C_r . B_(chunk start of r + j)
    chunk: int,
) -> None:
    B_, T, G = cm.size(0), cm.size(1), cm.size(2)
    hl.specialize(cm.size(3))
    Q = hl.specialize(chunk)
    # the whole [Q, Q] block of each chunk (the scan reads only its causal part); once per group, not per head
    for tile_i, tile_j, tile_c, tile_g, tile_b in hl.tile([Q, Q, cb.size(1) // Q, G, B_],
                                                           block_size=[None, None, 1, 1, 1]):
        i_g = tile_g.begin
        i_b = tile_b.begin
        c0 = tile_c.begin * Q
        rows = torch.where(c0 + tile_i.index < T, c0 + tile_i.index, T - 1)
        cols = torch.where(c0 + tile_j.index < T, c0 + tile_j.index, T - 1)
        cb[i_b, c0 + tile_i.index, i_g, tile_j] = hl.dot(cm[i_b, rows, i_g, :], bm[i_b, cols, i_g, :].T)


@helion.kernel(static_shapes=False)
def ssd_scan_kernel(
    x: torch.Tensor,  # [b, T, H, P]
    bm: torch.Tensor,  # [b, T, G, N]
    cm: torch.Tensor,  # [b, T, G, N]
    d_in: torch.Tensor,  # [b, T, H] fp32
    a_cum: torch.Tensor,  # [b, T, H] fp32
    s_start: torch.Tensor,  # [b, NC, H, P, N] fp32 or bf16
    d_skip: torch.Tensor,  # [H] fp32
    y: torch.Tensor,  # [b, T, H, P], written
    cb_in: torch.Tensor,  # [b, NC * Q, G, Q] fp32 from ssd_cb_kernel when use_cb, else unread
    chunk: int,
    block_m: int,
    use_cb: hl.constexpr,  # read C B^T from cb_in instead of recomputing it for every head
) -> None:
    B_, T, H, P = x.size(0), x.size(1), x.size(2), x.size(3)
    hl.specialize(bm.size(3))
    Q = hl.specialize(chunk)
    BM = hl.specialize(block_m)
    group = H // bm.size(2)
    block_p = hl.register_block_size(P)
    block_k = hl.register_block_size(Q)
    for tile_p, tile_h, tile_t, tile_b in hl.tile([P, H, T, B_], block_size=[block_p, 1, BM, 1]):
        i_h = tile_h.begin
        i_b = tile_b.begin
        i_g = i_h // group
        c_id = tile_t.begin // Q
        c0 = c_id * Q
        c_rows = cm[i_b, tile_t, i_g, :]  # [BM, N]
        a_r = a_cum[i_b, tile_t, i_h]  # [BM]
        s0 = s_start[i_b, c_id, i_h, tile_p, :]  # [BP, N] fp32
        acc = hl.dot(c_rows, s0.T.to(c_rows.dtype)) * torch.exp(a_r)[:, None]  # [BM, BP]
        for tile_s in hl.tile(0, tile_t.begin - c0 + BM, block_size=block_k):  # column blocks up to the diagonal
            pos = c0 + tile_s.index
            pos_in = torch.where(pos < T, pos, T - 1)
            if use_cb:
                cb = cb_in[i_b, tile_t, i_g, tile_s]  # [BM, BK]
            else:
                b_s = bm[i_b, pos_in, i_g, :]  # [BK, N]
                cb = hl.dot(c_rows, b_s.T)  # [BM, BK]
            wgt = cb * torch.exp(a_r[:, None] - a_cum[i_b, pos_in, i_h][None, :]) * d_in[i_b, pos_in, i_h][None, :]
            keep = (pos[None, :] <= tile_t.index[:, None]) & (pos[None, :] < T)
            wgt = torch.where(keep, wgt, 0.0)
            xs = x[i_b, pos_in, i_h, tile_p]  # [BK, BP]
            acc = hl.dot(wgt.to(xs.dtype), xs, acc=acc)
        x_r = x[i_b, tile_t, i_h, tile_p].to(torch.float32)
        y[i_b, tile_t, i_h, tile_p] = (acc + d_skip[i_h] * x_r).to(y.dtype)


class HelionMamba2SSD(HelionPort):
    kernel: ClassVar[str] = "mamba2_ssd"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    # start_bf16 (state passing entry, default 1): the start states stored in bf16 in a second buffer instead of
    # fp32 in place; the output is bit-identical (the scan rounds them to bf16 for its dot) and the passing's
    # stores and the scan's loads of them halve.  An `ssd_cb_kernel` entry (in the defaults) adds a launch that
    # computes C B^T once per (chunk, group), and the scan (its `ssd_scan_kernel` entry) reads it instead of
    # recomputing it for every head.
    host_keys: ClassVar[tuple[str, ...]] = ("chunk", "block_m", "start_bf16")
    notes: ClassVar[tuple[str, ...]] = (
        "5 launches: softplus + chunk cumsum; chunk states (all chunks in parallel); state passing (serial over "
        "chunks, elementwise); C B^T once per (chunk, group); chunk scan (fp32 accumulation)",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        b, t, h, p, n = (int(dims[x]) for x in ("batch", "T", "H", "P", "N"))
        q = int(dims["chunk"])
        bq = pow2_at_most(64, q)
        # chunk states: one [64, 128] tile per (chunk, head) as mamba_ssm's dstate-128 configs, split while the
        # grid (all chunks but the last) leaves SMs idle
        states = max(1, -(-t // q) - 1) * h * b
        bp_state = pow2_at_most(64, p, floor=16)
        bn_state = fill_sms(pow2_at_most(128, n, floor=16), 64, lambda bn: states * -(-p // bp_state) * -(-n // bn),
                            per_sm=4)
        bp_state = fill_sms(bp_state, 32, lambda bp: states * -(-p // bp) * -(-n // bn_state), per_sm=4)
        # state passing: memory-bound, serial over chunks; 1024-element [P N] slices unless the grid is small
        bm_pass = fill_sms(pow2_at_most(1024, p * n, floor=128), 128, lambda bs: -(-(p * n) // bs) * h * b, per_sm=4)
        bm = min(64, q)
        bp_scan = pow2_at_most(64, p, floor=16)
        return {
            "ssd_cumsum_kernel": {"chunk": q, "num_warps": 4, "num_stages": 1},
            "ssd_state_kernel": {"chunk": q, "block_sizes": [bp_state, bn_state, bq], "num_warps": 4, "num_stages": 2},
            "ssd_state_passing_kernel": {"chunk": q, "block_sizes": [bm_pass], "num_warps": 4, "num_stages": 1,
                                         "start_bf16": 1},
            # one stage: occupancy over pipelining (3 CTAs/SM instead of 2 at the [64, 64] tile); it also keeps
            # clear of the 64-row / 4-warp / multi-stage wgmma configs vLLM's sm90 rule drops as a register race
            # C B^T once per (chunk, group) and 32-column blocks in the scan: T=16384 at mamba2-2.7b 746 -> 696 us
            # (vLLM 646; ports/configs/h200/round4.probe-20261204.txt); [64, 32] alone 781, C B^T alone no gain
            "ssd_cb_kernel": {"chunk": q, "block_sizes": [bq, bq], "num_warps": 4, "num_stages": 1},
            "ssd_scan_kernel": {"chunk": q, "block_m": bm, "block_sizes": [bp_scan, pow2_at_most(32, q)],
                                "num_warps": 4 if bm * bp_scan <= 4096 else 8, "num_stages": 1},
        }

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, dt = inputs["x"], inputs["dt"]
        b, t, h, p = x.shape
        n = inputs["B"].shape[3]
        q = int(configs["ssd_scan_kernel"].get("chunk", inputs["chunk_size"]))
        bm = int(configs["ssd_scan_kernel"].get("block_m", min(64, q)))
        chunked = ("ssd_cumsum_kernel", "ssd_state_kernel", "ssd_state_passing_kernel", "ssd_cb_kernel")
        if any(int(configs[k].get("chunk", q)) != q for k in chunked if k in configs) or q % bm:
            raise ValueError(f"mamba2_ssd port: one chunk for all launches and block_m dividing it ({configs})")
        nc = math.ceil(t / q)
        d = torch.empty((b, t, h), dtype=torch.float32, device=x.device)
        a_cum = torch.empty_like(d)
        # chunk states, rewritten in place as chunk start states (or copied to a bf16 buffer, start_bf16); with a
        # single chunk they are all zeros and nothing writes them
        states = (torch.zeros if nc == 1 else torch.empty)((b, nc, h, p, n), dtype=torch.float32, device=x.device)
        s_start = states
        if nc > 1 and int(configs.get("ssd_state_passing_kernel", {}).get("start_bf16", 0)):
            s_start = torch.empty((b, nc, h, p, n), dtype=x.dtype, device=x.device)
        steps = [Launch(ssd_cumsum_kernel, (dt, inputs["dt_bias"], inputs["A"], d, a_cum, q))]
        if nc > 1:
            steps += [
                Launch(ssd_state_kernel, (x, inputs["B"], d, a_cum, states, q)),
                Launch(ssd_state_passing_kernel, (a_cum, states.view(b, nc, h, p * n), s_start.view(b, nc, h, p * n),
                                                  q)),
            ]
        use_cb = "ssd_cb_kernel" in configs
        cb = torch.empty((b, nc * q, inputs["C"].shape[2], q) if use_cb else (1, 1, 1, 1), dtype=torch.float32,
                         device=x.device)
        if use_cb:
            steps.append(Launch(ssd_cb_kernel, (inputs["C"], inputs["B"], cb, q)))
        steps.append(Launch(ssd_scan_kernel, (x, inputs["B"], inputs["C"], d, a_cum, s_start, inputs["D"], out, cb,
                                              q, bm, use_cb)))
        return steps


IMPL = HelionMamba2SSD()

if __name__ == "__main__":
    check_main(IMPL)
