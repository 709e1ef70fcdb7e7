"""Helion port of paged causal attention over a mixed decode / chunked-prefill batch with GQA (catalog rows 13
vLLM `kernel_unified_attention` 2D/3D + `reduce_segments`, 80 vLLM unified attention, 81 SGLang extend attention).

    out[i, h] = softmax_{j <= L_b - q_len_b + i}(q[i, h] . K_b[j, h // G] * scale) @ V_b[:, h // G]
    q [N, Hq, D] packed (cu_seqlens_q [B + 1]); k/v_cache [num_blocks, 16, Hkv, D]; block_table [B, max_blocks];
    seq_lens [B] (= L_b, context + new tokens); out like q

Two paths, picked on the host from max_seqlen_q (an int input, no sync):
* batches with new prompt tokens: `unified_attention_fwd`, a flash-attention forward per (query head, query
  block, sequence): K/V rows gathered through the block table (slot = table[b, j // page] * page + j % page),
  exp2 online softmax in fp32, P rounded to the KV dtype for the PV tensor-core product; the keys left of
  the block's first causal limit (L - q_len + q_begin, rounded down to a key block) run unmasked, only the
  diagonal strip is masked, nothing right of it is loaded.  Query blocks are issued longest-first and the G
  heads of a KV group are adjacent programs, so their K/V gathers hit L2.
* pure decode (every q_len 1): the split-KV grouped decode kernels of ports/attention/paged_decode_attention.py
  (all G heads of a KV head per program, KV split so the SMs fill, LSE reduce), the same math with q_len = 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, sm_count
from ports.attention import paged_decode_attention as decode

LOG2E = 1.4426950408889634


@helion.kernel(static_shapes=False)
def unified_attention_fwd(
    q: torch.Tensor,  # [N, Hq, D] bf16/fp16
    k_cache: torch.Tensor,  # [num_blocks * page, Hkv, D] (view of the paged cache)
    v_cache: torch.Tensor,  # [num_blocks * page, Hkv, D]
    block_table: torch.Tensor,  # [B, max_blocks] int32
    seq_lens: torch.Tensor,  # [B] int32 (context + new tokens)
    cu_q: torch.Tensor,  # [B + 1] int32
    out: torch.Tensor,  # [N, Hq, D], written
    n_mtiles: int,  # cdiv(max_seqlen_q, BM)
    qk_scale: float,  # sm_scale * log2(e)
    page: hl.constexpr,
    BM: hl.constexpr,  # query rows per program
    BN: hl.constexpr,  # keys per step
) -> None:
    Hq, Hkv, B = q.size(1), k_cache.size(1), seq_lens.size(0)
    D = hl.specialize(q.size(2))
    G = Hq // Hkv
    for h, mt, b in hl.grid([Hq, n_mtiles, B]):
        q_start = cu_q[b]
        q_len = cu_q[b + 1] - q_start
        ctx = seq_lens[b] - q_len  # cached tokens before the new ones
        kh = h // G
        q_begin = (n_mtiles - 1 - mt) * BM  # longest causal rows first
        q_end = torch.where(q_begin + BM < q_len, q_begin + BM, q_len)
        for tm in hl.tile(q_begin, q_end, block_size=BM):  # one step: its mask is the sequence's rows
            rows = tm.index
            qb = q[q_start + rows, h, :]  # [BM, D]
            m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
            l_i = hl.zeros([tm], dtype=torch.float32)
            acc = hl.zeros([tm, D], dtype=torch.float32)
            full_end = (ctx + q_begin) // BN * BN  # whole key blocks every row of the block sees
            for tn in hl.tile(0, full_end, block_size=BN):
                tok = tn.index
                blk = hl.load(block_table, [b, tok // page])
                slot = blk.to(torch.int64) * page + tok % page  # [BN] (int64: caches over 2^31 elements)
                kt = k_cache[slot, kh, :]  # [BN, D]
                vt = v_cache[slot, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [BM, BN]
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                p = torch.exp2(s - m_new[:, None])
                alpha = torch.exp2(m_i - m_new)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            for tn in hl.tile(full_end, ctx + q_end, block_size=BN):  # the diagonal strip, causal mask
                tok = tn.index
                blk = hl.load(block_table, [b, tok // page])
                slot = blk.to(torch.int64) * page + tok % page
                kt = k_cache[slot, kh, :]
                vt = v_cache[slot, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale
                s = torch.where(tok[None, :] <= ctx + rows[:, None], s, float("-inf"))
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                p = torch.exp2(s - m_new[:, None])
                alpha = torch.exp2(m_i - m_new)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            out[q_start + rows, h, :] = (acc / l_i[:, None]).to(out.dtype)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    b, qn, hq, d = (int(dims[k]) for k in ("B", "Q", "Hq", "D"))
    bm = pow2_at_most(128, qn, floor=16)
    if bm > 64 and b * hq * -(-qn // bm) < 2 * sm_count():  # too few programs for the SMs: halve the block
        bm = 64
    bn = 64 if d <= 128 else 32
    warps = 8 if bm >= 128 or d > 128 else 4
    cfgs: Configs = {"unified_attention_fwd": {"block_m": bm, "block_n": bn, "num_warps": warps,
                                              "num_stages": 3 if d <= 128 else 2}}
    # the pure-decode path (every q_len 1): the paged decode port's split-KV kernels and heuristic
    cfgs.update(decode.default_configs(dims, dtype))
    cfgs.setdefault("paged_decode_reduce", {"block_sizes": [1, 1, 1], "num_warps": 4})
    return cfgs


class HelionUnifiedAttention(HelionPort):
    kernel: ClassVar[str] = "unified_attention"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "block_n", "num_splits")
    notes: ClassVar[tuple[str, ...]] = (
        "chunks: paged flash forward (block-table gather, exp2 online softmax, unmasked blocks left of the causal "
        "strip, longest query blocks first); pure decode: the paged_decode_attention port's split-KV kernels",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        if name == "unified_attention_fwd":
            return [{"block_m": 128, "block_n": 64}, {"block_m": 128, "block_n": 32}, {"block_m": 64, "block_n": 64}]
        return decode.IMPL.host_candidates(name, dims, dtype)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, kc, vc = inputs["q"], inputs["k_cache"], inputs["v_cache"]
        n, hq, d = q.shape
        nb, page, hkv, _ = kc.shape
        kf, vf = kc.view(nb * page, hkv, d), vc.view(nb * page, hkv, d)
        table, lens = inputs["block_table"], inputs["seq_lens"]
        qk_scale = float(inputs["sm_scale"]) * LOG2E
        max_q = int(inputs["max_seqlen_q"])
        if max_q == 1 and hq > 1 and n == lens.shape[0]:
            splits = int(configs["paged_decode_split"]["num_splits"])
            if splits == 1:
                dummy = torch.empty(n, hq, 1, dtype=torch.float32, device=q.device)
                return [Launch(decode.paged_decode_split, (q, kf, vf, table, lens, out.view(n, hq, 1, d), dummy,
                                                           qk_scale, page, True))]
            o_part = torch.empty(n, hq, splits, d, dtype=torch.float32, device=q.device)
            lse_part = torch.empty(n, hq, splits, dtype=torch.float32, device=q.device)
            return [
                Launch(decode.paged_decode_split, (q, kf, vf, table, lens, o_part, lse_part, qk_scale, page, False)),
                Launch(decode.paged_decode_reduce, (o_part.view(n * hq, splits, d), lse_part.view(n * hq, splits),
                                                    out.view(n * hq, d))),
            ]
        cfg = configs["unified_attention_fwd"]
        bm, bn = int(cfg["block_m"]), int(cfg["block_n"])
        n_mtiles = -(-max_q // bm)
        return [Launch(unified_attention_fwd, (q, kf, vf, table, lens, inputs["cu_seqlens_q"], out, n_mtiles,
                                               qk_scale, page, bm, bn))]


IMPL = HelionUnifiedAttention()

if __name__ == "__main__":
    check_main(IMPL)
