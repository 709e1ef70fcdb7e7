"""Helion port of two-sided sliding-window attention backward (catalog row 5: MaxLSB/flash-attn2
`FlashAttention.backward`, kernels `_attn_bwd_preprocess`, `_attn_bwd_dk_dv`, `_attn_bwd_dq`).

    P = softmax_{|i-j| <= W//2}(q k^T * s),  dv = P^T dO,  dS = P * (dO v^T - rowsum(dO * O)),
    dq = s * dS k,  dk = s * dS^T q          q, k, v, dO [B, H, T, D] fp16 -> out [3, B, H, T, D] fp32 (dq, dk, dv)

Three launches, all over the window only (work ~ T * W; the upstream backward visits every block of the
sequence and masks, ~ T^2):
* `swa_bwd_stats` (query block, batch*head): the forward recomputed in fp32 (exp2 online softmax), writing
  the base-2 row LSE and delta = rowsum(dO * O) with O still in fp32 (the upstream's `_attn_bwd_preprocess`
  reads a stored fp16 O; this fuses that pass into the forward).  The forward runs inside the timed call: the
  gate rewrites q/k/v/dO after prepare, so O and the LSE cannot be kept from an untimed forward.
* `swa_bwd_dkdv` (key block, batch*head): streams the query blocks of the window, P^T = exp2(k q^T s' - lse),
  dv += P^T dO, dS^T = P^T (v dO^T - delta), dk += dS^T q; fp16 GEMM operands, fp32 accumulators, written fp32.
* `swa_bwd_dq` (query block, batch*head): streams the key blocks, dq += dS k, written fp32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, sm_count

LOG2E = 1.4426950408889634


@helion.kernel(static_shapes=False)
def swa_bwd_stats(
    q: torch.Tensor,  # [BH, T, D] fp16
    k: torch.Tensor,  # [BH, T, D]
    v: torch.Tensor,  # [BH, T, D]
    do: torch.Tensor,  # [BH, T, D]
    lse: torch.Tensor,  # [BH, T] fp32 scratch: base-2 LSE of the scaled scores
    delta: torch.Tensor,  # [BH, T] fp32 scratch: rowsum(dO * O)
    t_len: torch.Tensor,  # [1] int32 = T
    half: int,  # W // 2
    qk_scale: float,  # sm_scale * log2(e)
    BN: hl.constexpr,
) -> None:
    BH, T = q.size(0), q.size(1)
    D = hl.specialize(q.size(2))
    for tm, tbh in hl.tile([T, BH], block_size=[None, 1]):
        bh = tbh.begin
        n = t_len[0]
        zero = n * 0  # a tensor zero: the window bounds are device scalars
        lo = torch.clamp(zero + (tm.begin - half), min=0)
        hi = torch.minimum(zero + (tm.begin + tm.block_size + half), n)
        qb = q[bh, tm, :]
        m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
        l_i = hl.zeros([tm], dtype=torch.float32)
        acc = hl.zeros([tm, D], dtype=torch.float32)
        for tn in hl.tile(lo, hi, block_size=BN):
            kt = k[bh, tn, :]
            vt = v[bh, tn, :]
            s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale
            s = torch.where(torch.abs(tm.index[:, None] - tn.index[None, :]) <= half, s, float("-inf"))
            m_new = torch.maximum(m_i, torch.amax(s, dim=1))
            m_use = torch.where(m_new == float("-inf"), 0.0, m_new)  # a row with no key yet: p = alpha = 0
            p = torch.exp2(s - m_use[:, None])
            alpha = torch.exp2(m_i - m_use)
            l_i = l_i * alpha + torch.sum(p, dim=1)
            acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
            m_i = m_new
        o = acc / l_i[:, None]
        lse[bh, tm] = m_i + torch.log2(l_i)
        delta[bh, tm] = torch.sum(o * do[bh, tm, :].to(torch.float32), dim=1)


@helion.kernel(static_shapes=False)
def swa_bwd_dkdv(
    q: torch.Tensor,  # [BH, T, D] fp16
    k: torch.Tensor,
    v: torch.Tensor,
    do: torch.Tensor,
    lse: torch.Tensor,  # [BH, T] fp32 base-2
    delta: torch.Tensor,  # [BH, T] fp32
    dk: torch.Tensor,  # [BH, T, D] fp32, written
    dv: torch.Tensor,  # [BH, T, D] fp32, written
    t_len: torch.Tensor,  # [1] int32 = T
    half: int,
    qk_scale: float,  # sm_scale * log2(e)
    sm_scale: float,
    BQ: hl.constexpr,  # queries per step
) -> None:
    BH, T = q.size(0), q.size(1)
    D = hl.specialize(q.size(2))
    for tn, tbh in hl.tile([T, BH], block_size=[None, 1]):
        bh = tbh.begin
        n = t_len[0]
        zero = n * 0
        lo = torch.clamp(zero + (tn.begin - half), min=0)
        hi = torch.minimum(zero + (tn.begin + tn.block_size + half), n)
        kt = k[bh, tn, :]  # [BN, D]
        vt = v[bh, tn, :]
        dk_acc = hl.zeros([tn, D], dtype=torch.float32)
        dv_acc = hl.zeros([tn, D], dtype=torch.float32)
        for tq in hl.tile(lo, hi, block_size=BQ):
            qt = q[bh, tq, :]  # [BQ, D]
            dot_ = do[bh, tq, :]
            l_q = lse[bh, tq]
            d_q = delta[bh, tq]
            st = hl.dot(kt, qt.T, out_dtype=torch.float32) * qk_scale  # [BN, BQ]
            inside = torch.abs(tn.index[:, None] - tq.index[None, :]) <= half
            pt = torch.where(inside, torch.exp2(st - l_q[None, :]), 0.0)
            dv_acc = hl.dot(pt.to(dot_.dtype), dot_, acc=dv_acc)
            dpt = hl.dot(vt, dot_.T, out_dtype=torch.float32)  # [BN, BQ]
            dst = pt * (dpt - d_q[None, :])
            dk_acc = hl.dot(dst.to(qt.dtype), qt, acc=dk_acc)
        dk[bh, tn, :] = dk_acc * sm_scale
        dv[bh, tn, :] = dv_acc


@helion.kernel(static_shapes=False)
def swa_bwd_dq(
    q: torch.Tensor,  # [BH, T, D] fp16
    k: torch.Tensor,
    v: torch.Tensor,
    do: torch.Tensor,
    lse: torch.Tensor,  # [BH, T] fp32 base-2
    delta: torch.Tensor,  # [BH, T] fp32
    dq: torch.Tensor,  # [BH, T, D] fp32, written
    t_len: torch.Tensor,  # [1] int32 = T
    half: int,
    qk_scale: float,
    sm_scale: float,
    BN: hl.constexpr,  # keys per step
) -> None:
    BH, T = q.size(0), q.size(1)
    D = hl.specialize(q.size(2))
    for tm, tbh in hl.tile([T, BH], block_size=[None, 1]):
        bh = tbh.begin
        n = t_len[0]
        zero = n * 0
        lo = torch.clamp(zero + (tm.begin - half), min=0)
        hi = torch.minimum(zero + (tm.begin + tm.block_size + half), n)
        qb = q[bh, tm, :]
        dob = do[bh, tm, :]
        l_m = lse[bh, tm]
        d_m = delta[bh, tm]
        acc = hl.zeros([tm, D], dtype=torch.float32)
        for tn in hl.tile(lo, hi, block_size=BN):
            kt = k[bh, tn, :]
            vt = v[bh, tn, :]
            s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [BM, BN]
            inside = torch.abs(tm.index[:, None] - tn.index[None, :]) <= half
            p = torch.where(inside, torch.exp2(s - l_m[:, None]), 0.0)
            dp = hl.dot(dob, vt.T, out_dtype=torch.float32)
            ds = p * (dp - d_m[:, None])
            acc = hl.dot(ds.to(kt.dtype), kt, acc=acc)
        dq[bh, tm, :] = acc * sm_scale


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    b, h, t, d = (int(dims[k]) for k in ("B", "H", "T", "D"))
    bm = pow2_at_most(128, t, floor=16)
    if bm > 64 and b * h * -(-t // bm) < 2 * sm_count():
        bm = 64
    small = pow2_at_most(64 if d <= 128 else 32, t, floor=16)
    big = {"num_warps": 8 if bm >= 128 or d > 128 else 4, "num_stages": 3 if d <= 128 else 2}
    return {
        "swa_bwd_stats": {"block_sizes": [bm], "block_n": small, **big},
        # key-block programs hold two [BN, D] fp32 accumulators: a 64-key block, 32-query steps
        "swa_bwd_dkdv": {"block_sizes": [min(bm, 64)], "block_q": min(small, 32), "num_warps": 4 if d <= 128 else 8,
                         "num_stages": 2 if d <= 128 else 1},
        "swa_bwd_dq": {"block_sizes": [min(bm, 64)], "block_n": min(small, 32), "num_warps": 4 if d <= 128 else 8,
                       "num_stages": 2 if d <= 128 else 1},
    }


class HelionSwaAttentionBwd(HelionPort):
    kernel: ClassVar[str] = "swa_attention_bwd"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp16",)
    host_keys: ClassVar[tuple[str, ...]] = ("block_n", "block_q")
    notes: ClassVar[tuple[str, ...]] = (
        "window-only backward (work ~ T*W): forward recompute fused with the delta preprocess (timed: the gate "
        "rewrites q/k/v/dO after prepare), dK/dV by key block, dQ by query block, fp32 grads written directly",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, k, v, do = inputs["q"], inputs["k"], inputs["v"], inputs["do"]
        b, h, t, d = q.shape
        qf, kf, vf, dof = (x.view(b * h, t, d) for x in (q, k, v, do))
        dq, dk, dv = (out[i].view(b * h, t, d) for i in range(3))
        lse = torch.empty(b * h, t, dtype=torch.float32, device=q.device)
        delta = torch.empty(b * h, t, dtype=torch.float32, device=q.device)
        t_len = torch.full((1,), t, dtype=torch.int32, device=q.device)
        half, scale = int(inputs["window"]) // 2, float(inputs["sm_scale"])
        qk_scale = scale * LOG2E
        return [
            Launch(swa_bwd_stats, (qf, kf, vf, dof, lse, delta, t_len, half, qk_scale,
                                   int(configs["swa_bwd_stats"]["block_n"]))),
            Launch(swa_bwd_dkdv, (qf, kf, vf, dof, lse, delta, dk, dv, t_len, half, qk_scale, scale,
                                  int(configs["swa_bwd_dkdv"]["block_q"]))),
            Launch(swa_bwd_dq, (qf, kf, vf, dof, lse, delta, dq, t_len, half, qk_scale, scale,
                                int(configs["swa_bwd_dq"]["block_n"]))),
        ]


IMPL = HelionSwaAttentionBwd()

if __name__ == "__main__":
    check_main(IMPL)
