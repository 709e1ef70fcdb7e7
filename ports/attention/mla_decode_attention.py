"""Helion port of MLA decode attention, absorbed (MQA) form over a paged latent cache (catalog rows 2/3 FlashMLA's
Triton `_mla_attn` + `_mla_softmax_reducev`, 10/11 vLLM `triton_decode_attention` is_mla, 79 SGLang
`decode_attention_fwd(has_mla=True)`).

    out[b, h] = softmax(q[b, h] . C_b^T * scale) @ C_b[:, :R]
    q [B, Hq, R + P]; kv_cache [num_blocks, page, R + P]; block_table [B, max_blocks] int32; seq_lens [B] int32
    -> out [B, Hq, R]

Flash-decoding in two launches when one program per (head block, sequence) would leave SMs idle:

* `mla_decode_split` grid (head blocks, S, B), head blocks fastest so the programs that share a KV range run
  together and the extra head blocks read it from L2: program (hb, s, b) streams its 1/S share of sequence b's
  tokens (split bounds aligned to 64 tokens) through the block table, BH query heads at once (heads padded to
  >= 16 rows for the tensor cores, masked), scores = q_nope . c^T + q_pe . k_pe^T (two dots, no concat), exp2
  online softmax in fp32, P rounded to the cache dtype for P @ c.  The latent row is gathered once per token
  and used for both QK and PV (the MQA form's point: every head shares it).  Writes the normalized partial
  [B, Hq, S, R] fp32 and base-2 LSE [B, Hq, S]; with S = 1 it writes `out` directly (one launch).
* `mla_decode_reduce` grid (B * Hq rows, R blocks): max of the S LSEs, exp2 weights, one fp32 weighted sum,
  one rounding.

Any Hq runs (FlashMLA's Triton needs Hq % 16 == 0): Hq = 1 is given as a stride-0 head pair (Helion would
specialize a size-1 head dim under the padded dot; both lanes compute and store the same row).
Traffic floor: sum(seq_lens) * (R + P) * elt; S (host value) gives ~4 waves of programs, splits >= 128 tokens.
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
def mla_decode_split(
    q_nope: torch.Tensor,  # [B, Hq, R] (view of q)
    q_pe: torch.Tensor,  # [B, Hq, P] (view of q)
    kv_c: torch.Tensor,  # [num_blocks * page, R] (view of the latent cache)
    k_pe: torch.Tensor,  # [num_blocks * page, P] (view of the latent cache)
    block_table: torch.Tensor,  # [B, max_blocks] int32
    seq_lens: torch.Tensor,  # [B] int32
    o_part: torch.Tensor,  # [B, Hq, S, R] fp32 scratch (or out viewed [B, Hq, 1, R] when direct)
    lse_part: torch.Tensor,  # [B, Hq, S] fp32 scratch (base-2 LSE)
    qk_scale: float,  # sm_scale * log2(e)
    page: hl.constexpr,
    direct: hl.constexpr,  # S == 1: o_part is the output, normalized in its dtype
) -> None:
    B, Hq = q_nope.size(0), q_nope.size(1)
    R = hl.specialize(q_nope.size(2))
    hl.specialize(q_pe.size(2))  # P
    S = o_part.size(2)
    block_h = hl.register_block_size(Hq)
    for tile_h, tile_s, tile_b in hl.tile([Hq, S, B], block_size=[block_h, 1, 1]):
        b = tile_b.begin
        sp = tile_s.begin
        seq_len = seq_lens[b]
        per = (seq_len + S * 64 - 1) // (S * 64) * 64  # tokens per split, a multiple of 64
        start = sp * per
        end = torch.minimum(start + per, seq_len)
        qn = q_nope[b, tile_h, :]  # [bh, R]
        qp = q_pe[b, tile_h, :]  # [bh, P]
        m_i = hl.full([tile_h], float("-inf"), dtype=torch.float32)
        l_i = hl.zeros([tile_h], dtype=torch.float32)
        acc = hl.zeros([tile_h, R], dtype=torch.float32)
        for tile_n in hl.tile(start, end):
            tok = tile_n.index
            blk = hl.load(block_table, [b, tok // page])
            slot = blk.to(torch.int64) * page + tok % page  # [bn] (int64: caches over 2^31 elements)
            c = kv_c[slot, :]  # [bn, R], used by both products
            kp = k_pe[slot, :]  # [bn, P]
            s = hl.dot(qn, c.T, out_dtype=torch.float32)
            s = hl.dot(qp, kp.T, acc=s) * qk_scale  # [bh, bn]
            s = torch.where((tok < end)[None, :], s, float("-inf"))
            m_new = torch.maximum(m_i, torch.amax(s, dim=1))
            p = torch.exp2(s - m_new[:, None])
            alpha = torch.exp2(m_i - m_new)
            l_i = l_i * alpha + torch.sum(p, dim=1)
            acc = hl.dot(p.to(c.dtype), c, acc=acc * alpha[:, None])
            m_i = m_new
        nonempty = l_i > 0.0
        o = torch.where(nonempty[:, None], acc / torch.where(nonempty, l_i, 1.0)[:, None], 0.0)
        if direct:
            o_part[b, tile_h, sp, :] = o.to(o_part.dtype)
        else:
            o_part[b, tile_h, sp, :] = o
            lse_part[b, tile_h, sp] = m_i + torch.log2(l_i)


@helion.kernel(static_shapes=False)
def mla_decode_reduce(
    o_part: torch.Tensor,  # [N, S, R] fp32 (N = B * Hq)
    lse_part: torch.Tensor,  # [N, S] fp32 base-2 LSEs (-inf for an empty split)
    out: torch.Tensor,  # [N, R] bf16/fp16, written
) -> None:
    N, S, R = o_part.size(0), o_part.size(1), out.size(1)
    for tile_r, tile_d in hl.tile([N, R]):  # latent columns tiled too: enough programs at small B * Hq
        m = hl.full([tile_r], float("-inf"), dtype=torch.float32)
        for tile_s in hl.tile(S):
            ls = torch.where(tile_s.index[None, :] < S, lse_part[tile_r, tile_s], float("-inf"))
            m = torch.maximum(m, torch.amax(ls, dim=1))
        den = hl.zeros([tile_r], dtype=torch.float32)
        acc = hl.zeros([tile_r, tile_d], dtype=torch.float32)
        for tile_s in hl.tile(S):
            w = torch.exp2(lse_part[tile_r, tile_s] - m[:, None])  # [br, bs]
            w = torch.where(tile_s.index[None, :] < S, w, 0.0)
            den = den + torch.sum(w, dim=1)
            acc = acc + torch.sum(o_part[tile_r, tile_s, tile_d] * w[:, :, None], dim=1)
        out[tile_r, tile_d] = (acc / den[:, None]).to(out.dtype)


def num_splits(b: int, head_blocks: int, seq_len: int, sms: int) -> int:
    """Splits per (sequence, head block): ~4 waves of programs over the SMs, each split >= 128 tokens (its fp32
    partial [BH, R] then costs <= ~1/4 of its KV bytes, written and read back once), <= 256."""
    want = -(-4 * sms // max(1, b * head_blocks))
    return max(1, min(want, -(-seq_len // 128), 256))


def head_block(hq: int) -> int:
    return pow2_at_most(16, hq, floor=16)  # tensor-core M = 16; fewer heads are masked lanes


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    """Split kernel: [head block, KV block], `num_splits` splits.  Reduce: [1 row, bd latent columns] programs
    (bd halved to 64 while under 2 programs per SM), S walked bs splits a step, both S loops with 4 stages (after
    the outer tile's 0): Triton software-pipelines a dot-free loop only when the loop itself has a stage count
    (the kernel-wide num_stages does nothing here).  At B = 1 and long contexts, 128 programs each walk 256
    splits in 16 steps of [16, 64] fp32 partials; the stages keep the next 3 steps in flight (cp.async)."""
    b, hq, r, seq = (int(dims[k]) for k in ("B", "Hq", "R", "L"))
    bh = head_block(max(2, hq))
    splits = num_splits(b, -(-hq // bh), seq, sm_count())
    bn = 32 if r >= 256 else 64
    cfgs: Configs = {
        "mla_decode_split": {"num_splits": splits, "block_sizes": [bh, bn], "num_warps": 4, "num_stages": 2},
    }
    if splits > 1:
        bs = pow2_at_most(16, splits)
        rows, bd = b * max(2, hq), pow2_at_most(512, r, floor=16)
        while bd > 64 and rows * -(-r // bd) < 2 * sm_count():
            bd //= 2
        cfgs["mla_decode_reduce"] = {"block_sizes": [1, bd, bs, bs], "num_warps": 4, "range_num_stages": [0, 4, 4]}
    return cfgs


class HelionMlaDecodeAttention(HelionPort):
    kernel: ClassVar[str] = "mla_decode_attention"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    host_keys: ClassVar[tuple[str, ...]] = ("num_splits",)
    notes: ClassVar[tuple[str, ...]] = (
        "split-KV MLA: 16 query heads per program share each gathered latent row for QK (nope + rope dots) and PV, "
        "exp2 online softmax, + LSE reduce; one launch when a single split fills the GPU; any head count",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        if name != "mla_decode_split":
            return [{}]
        hq = int(dims["Hq"])
        base = num_splits(int(dims["B"]), -(-hq // head_block(max(2, hq))), int(dims["L"]), sm_count())
        return [{"num_splits": s} for s in sorted({max(1, base // 2), base, base * 2})]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, cache = inputs["q"], inputs["kv_cache"]
        r = int(inputs["kv_lora_rank"])
        b, hq, width = q.shape
        nb, page, _ = cache.shape
        o = out
        if hq == 1:  # a stride-0 pair of identical heads: never a size-1 dim under the padded dot
            q, o, hq = q.expand(b, 2, width), out.expand(b, 2, r), 2
        flat = cache.view(nb * page, width)
        args = (q[..., :r], q[..., r:], flat[:, :r], flat[:, r:], inputs["block_table"], inputs["seq_lens"])
        splits = int(configs["mla_decode_split"]["num_splits"])
        qk_scale = float(inputs["sm_scale"]) * LOG2E
        if splits == 1:
            dummy = torch.empty(b, hq, 1, dtype=torch.float32, device=q.device)
            return [Launch(mla_decode_split, (*args, o.unsqueeze(2), dummy, qk_scale, page, True))]
        o_part = torch.empty(b, hq, splits, r, dtype=torch.float32, device=q.device)
        lse_part = torch.empty(b, hq, splits, dtype=torch.float32, device=q.device)
        launches = [Launch(mla_decode_split, (*args, o_part, lse_part, qk_scale, page, False))]
        if out.shape[1] == 1:  # reduce straight into the single head: rows b of o_part's head 0
            launches.append(Launch(mla_decode_reduce, (o_part[:, 0], lse_part[:, 0], out[:, 0])))
        else:
            launches.append(Launch(mla_decode_reduce, (o_part.view(b * hq, splits, r),
                                                       lse_part.view(b * hq, splits), out.view(b * hq, r))))
        return launches


IMPL = HelionMlaDecodeAttention()

if __name__ == "__main__":
    check_main(IMPL)
