"""Helion port of varlen causal prefill attention with GQA over packed Q/K/V (catalog rows 1 vLLM
`triton_prefill_attention.context_attention_fwd`, 12 SGLang `prefill_attention.context_attention_fwd`).

    out[s+i, h] = sum_{j <= i} softmax_j(q[s+i, h] . k[s+j, h // G] * scale) v[s+j, h // G]
    q [N, Hq, D], k/v [N, Hkv, D] packed (sequence b = rows b_start_loc[b] .. + b_seq_len[b]); out like q

Flash-attention forward, one launch: program (head h, query block, sequence b) keeps a [BM, D] Q tile and
streams K/V blocks with an exp2 online softmax (fp32 running max, sum and accumulator; P rounded to the KV dtype
for the tensor-core PV product).  Causal: the blocks left of the query block run unmasked, only the diagonal
block(s) are masked, blocks right of it are never loaded.  Sequence starts and lengths are read in-kernel (no
host sync); query blocks are issued longest-first (the causal work grows with the block index) and the heads of
one query block are adjacent programs, so a KV group's G heads read the same K/V from L2.
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
def prefill_attention_fwd(
    q: torch.Tensor,  # [N, Hq, D] bf16/fp16
    k: torch.Tensor,  # [N, Hkv, D]
    v: torch.Tensor,  # [N, Hkv, D]
    b_start: torch.Tensor,  # [B] int32
    b_len: torch.Tensor,  # [B] int32
    out: torch.Tensor,  # [N, Hq, D], written
    n_mtiles: int,  # cdiv(max_input_len, BM)
    qk_scale: float,  # sm_scale * log2(e)
    BM: hl.constexpr,  # query rows per program
    BN: hl.constexpr,  # keys per step (divides BM: the unmasked part ends on a block edge)
) -> None:
    Hq, Hkv, B = q.size(1), k.size(1), b_len.size(0)
    D = hl.specialize(q.size(2))
    G = Hq // Hkv
    for h, mt, b in hl.grid([Hq, n_mtiles, B]):
        start = b_start[b]
        seq_len = b_len[b]
        kh = h // G
        q_begin = (n_mtiles - 1 - mt) * BM  # longest causal rows first
        q_end = torch.where(q_begin + BM < seq_len, q_begin + BM, seq_len)
        for tm in hl.tile(q_begin, q_end, block_size=BM):  # one step: its mask is the sequence's rows
            rows = tm.index
            qb = q[start + rows, h, :]  # [BM, D]
            m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
            l_i = hl.zeros([tm], dtype=torch.float32)
            acc = hl.zeros([tm, D], dtype=torch.float32)
            for tn in hl.tile(0, q_begin, block_size=BN):  # keys every row of the block sees: no mask
                kt = k[start + tn.index, kh, :]  # [BN, D]
                vt = v[start + tn.index, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [BM, BN]
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                p = torch.exp2(s - m_new[:, None])
                alpha = torch.exp2(m_i - m_new)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            for tn in hl.tile(q_begin, q_end, block_size=BN):  # the diagonal block(s)
                kt = k[start + tn.index, kh, :]
                vt = v[start + tn.index, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale
                s = torch.where(tn.index[None, :] <= rows[:, None], s, float("-inf"))
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                p = torch.exp2(s - m_new[:, None])
                alpha = torch.exp2(m_i - m_new)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            out[start + rows, h, :] = (acc / l_i[:, None]).to(out.dtype)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    b, s, hq, d = (int(dims[k]) for k in ("B", "S", "Hq", "D"))
    bm = pow2_at_most(128, s, floor=16)
    if bm > 64 and b * hq * -(-s // bm) < 2 * sm_count():  # too few programs for 132 SMs: halve the block
        bm = 64
    bn = min(bm, 64 if d <= 128 else 32)
    return {"prefill_attention_fwd": {"block_m": bm, "block_n": bn, "num_warps": 8 if bm >= 128 or d > 128 else 4,
                                      "num_stages": 3 if d <= 128 else 2}}


class HelionPrefillAttention(HelionPort):
    kernel: ClassVar[str] = "prefill_attention"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "block_n")
    notes: ClassVar[tuple[str, ...]] = (
        "flash forward, one launch: exp2 online softmax, unmasked blocks left of the diagonal, masked diagonal "
        "block only, varlen starts/lengths read in-kernel, longest query blocks first, GQA heads adjacent for L2",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        return [{"block_m": 128, "block_n": 64}, {"block_m": 128, "block_n": 128}, {"block_m": 64, "block_n": 64}]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        cfg = configs["prefill_attention_fwd"]
        bm, bn = int(cfg["block_m"]), int(cfg["block_n"])
        if bm % bn:
            raise ValueError(f"block_n {bn} must divide block_m {bm}")
        n_mtiles = -(-int(inputs["max_input_len"]) // bm)
        qk_scale = float(inputs["sm_scale"]) * LOG2E
        return [Launch(prefill_attention_fwd, (inputs["q"], inputs["k"], inputs["v"], inputs["b_start_loc"],
                                               inputs["b_seq_len"], out, n_mtiles, qk_scale, bm, bn))]


IMPL = HelionPrefillAttention()

if __name__ == "__main__":
    check_main(IMPL)
