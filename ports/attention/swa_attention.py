"""Helion port of two-sided sliding-window self-attention forward (catalog row 4: MaxLSB/flash-attn2
`FlashAttention.forward(..., attn_mode="sliding_window")`).

    out[b, h, i] = softmax_{j : |i - j| <= W // 2}(q[b, h, i] . k[b, h, j] * D^-0.5) @ v[b, h, j]
    q, k, v, out [B, H, T, D] fp16 (MHA)

Flash-attention forward over the window only: program (query block, batch*head) visits just the keys
[q_begin - w, q_end + w) (work ~ T * W, not T^2), in three strips: the left edge (masked), the middle that every
row of the block sees (no mask; empty when W/2 < BM), the right edge (masked).  exp2 online softmax in fp32
(masked strips guard rows that see no key of a block yet), P rounded to fp16 for the PV tensor-core product.
Query blocks of one (batch, head) are adjacent programs, so overlapping windows are served from L2.
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
def swa_attention_fwd(
    q: torch.Tensor,  # [BH, T, D] fp16
    k: torch.Tensor,  # [BH, T, D]
    v: torch.Tensor,  # [BH, T, D]
    out: torch.Tensor,  # [BH, T, D], written
    t_len: torch.Tensor,  # [1] int32 = T (the window bounds below are clamped against it as tensors)
    half: int,  # W // 2
    qk_scale: float,  # sm_scale * log2(e)
    BN: hl.constexpr,  # keys per step
) -> None:
    BH, T = q.size(0), q.size(1)
    D = hl.specialize(q.size(2))
    for tm, tbh in hl.tile([T, BH], block_size=[None, 1]):
        bh = tbh.begin
        n = t_len[0]
        m_end = tm.begin + tm.block_size  # past T on the last block: only makes the unmasked middle narrower
        qb = q[bh, tm, :]  # [BM, D]
        m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
        l_i = hl.zeros([tm], dtype=torch.float32)
        acc = hl.zeros([tm, D], dtype=torch.float32)
        zero = n * 0  # a tensor zero: the bounds below are device scalars
        lo = torch.clamp(zero + (tm.begin - half), min=0)
        hi = torch.minimum(zero + (m_end + half), n)
        # keys in [mid_lo, mid_hi) are inside every row's window
        mid_lo = torch.minimum(torch.maximum(lo, zero + (m_end - 1 - half)), hi)
        mid_hi = torch.minimum(torch.maximum(mid_lo, zero + (tm.begin + half + 1)), hi)
        for tn in hl.tile(lo, mid_lo, block_size=BN):  # left edge
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
        for tn in hl.tile(mid_lo, mid_hi, block_size=BN):  # middle: no mask
            kt = k[bh, tn, :]
            vt = v[bh, tn, :]
            s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale
            m_new = torch.maximum(m_i, torch.amax(s, dim=1))
            p = torch.exp2(s - m_new[:, None])
            alpha = torch.exp2(m_i - m_new)
            l_i = l_i * alpha + torch.sum(p, dim=1)
            acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
            m_i = m_new
        for tn in hl.tile(mid_hi, hi, block_size=BN):  # right edge
            kt = k[bh, tn, :]
            vt = v[bh, tn, :]
            s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale
            s = torch.where(torch.abs(tm.index[:, None] - tn.index[None, :]) <= half, s, float("-inf"))
            m_new = torch.maximum(m_i, torch.amax(s, dim=1))
            m_use = torch.where(m_new == float("-inf"), 0.0, m_new)
            p = torch.exp2(s - m_use[:, None])
            alpha = torch.exp2(m_i - m_use)
            l_i = l_i * alpha + torch.sum(p, dim=1)
            acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
            m_i = m_new
        out[bh, tm, :] = (acc / l_i[:, None]).to(out.dtype)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    b, h, t, d = (int(dims[k]) for k in ("B", "H", "T", "D"))
    bm = pow2_at_most(128, t, floor=16)
    if bm > 64 and b * h * -(-t // bm) < 2 * sm_count():
        bm = 64
    bn = min(bm, 64 if d <= 128 else 32)
    return {"swa_attention_fwd": {"block_sizes": [bm], "block_n": bn, "num_warps": 8 if bm >= 128 or d > 128 else 4,
                                  "num_stages": 3 if d <= 128 else 2}}


class HelionSwaAttention(HelionPort):
    kernel: ClassVar[str] = "swa_attention"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp16",)
    host_keys: ClassVar[tuple[str, ...]] = ("block_n",)
    notes: ClassVar[tuple[str, ...]] = (
        "flash forward over the window only (work ~ T*W): masked left/right edge strips, unmasked middle, exp2 "
        "online softmax, query blocks of one head adjacent for L2 reuse of overlapping windows",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        return [{"block_n": 32}, {"block_n": 64}, {"block_n": 128}]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        b, h, t, d = q.shape
        cfg = configs["swa_attention_fwd"]
        flat = [x.view(b * h, t, d) for x in (q, k, v, out)]
        t_len = torch.full((1,), t, dtype=torch.int32, device=q.device)
        return [Launch(swa_attention_fwd, (*flat, t_len, int(inputs["window"]) // 2, float(inputs["sm_scale"]) * LOG2E,
                                           int(cfg["block_n"])))]


IMPL = HelionSwaAttention()

if __name__ == "__main__":
    check_main(IMPL)
