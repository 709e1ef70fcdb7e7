"""Helion port of SageAttention v1 (catalog rows 37 `attn_qk_int8_per_block._attn_fwd`, 39 its causal variant,
38 `quant_per_block_int8_kernel`; sageattention 1.0.6 `sageattn`, tensor_layout "HND", smooth_k).

    out[b, h] = softmax(Q8 K8^T * sq * sk [+ causal]) V,  Q8 = int8(Q * scale * log2e / sq) per Q block,
                K8 = int8((K - mean_seq(K)) / sk) per K block; q [B, Hq, S, D], k/v [B, Hkv, S, D] -> out [B, Hq, S, D]

Three launches (the timed call does everything `sageattn` does, from the raw fp16/bf16 inputs):

* `sage_k_colsum`  grid (chunks, Hkv, B): fp32 column sums of K over chunks of the sequence ([B, Hkv, C, D]), so
  the smoothing mean is parallel over the sequence even with one KV head.
* `sage_k_quant`   grid (K blocks, Hkv, B): mean = sum of the C partials / S, K - mean, one scale amax / 127 per
  block of BLKK tokens, int8 K [B, Hkv, S, D] and the scale repeated per token ([B, Hkv, S] fp32: the attention
  kernel's key tile then needs not align with the quant block).
* `sage_attn`      grid (Q blocks, Hq, B): quantizes its own Q block in registers (scale and log2(e) folded in, one
  scale per BM rows: the Q quant kernel and its int8 round trip through HBM are fused away), int8 x int8 -> int32
  tensor-core QK^T, dequant by sq * sk, exp2 online softmax in fp32, P rounded to V's dtype for the PV product
  (fp32 accumulate); causal: the key blocks left of the diagonal run unmasked, only the diagonal block(s) take
  the mask.  GQA: query head h reads KV head h // (Hq / Hkv).

Compute-bound at prefill lengths: 4 * S^2 * D * Hq FLOPs (halved causal), half of it on the int8 tensor cores.
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
def sage_k_colsum(
    k: torch.Tensor,  # [B, Hkv, S, D]
    ksum: torch.Tensor,  # [B, Hkv, C, D] fp32, written: column sums of chunk c (C = cdiv(S, chunk))
    chunk: hl.constexpr,  # tokens per chunk
) -> None:
    B, Hkv, S = k.size(0), k.size(1), k.size(2)
    D = hl.specialize(k.size(3))
    for tile_c, tile_h, tile_b in hl.tile([S, Hkv, B], block_size=[chunk, 1, 1]):
        acc = hl.zeros([D], dtype=torch.float32)
        for tile_s in hl.tile(tile_c.begin, tile_c.end):
            acc = acc + torch.sum(k[tile_b.begin, tile_h.begin, tile_s, :].to(torch.float32), dim=0)  # masked: 0
        ksum[tile_b.begin, tile_h.begin, tile_c.id, :] = acc


@helion.kernel(static_shapes=False)
def sage_k_quant(
    k: torch.Tensor,  # [B, Hkv, S, D]
    ksum: torch.Tensor,  # [B, Hkv, C, D] fp32 chunk column sums
    k8: torch.Tensor,  # [B, Hkv, S, D] int8, written
    kscale: torch.Tensor,  # [B, Hkv, S] fp32, written (the block's scale on each of its tokens)
) -> None:
    B, Hkv, S = k.size(0), k.size(1), k.size(2)
    D = hl.specialize(k.size(3))
    C = ksum.size(2)
    for tile_s, tile_h, tile_b in hl.tile([S, Hkv, B], block_size=[None, 1, 1]):
        b, h = tile_b.begin, tile_h.begin
        total = hl.zeros([D], dtype=torch.float32)
        for tile_c in hl.tile(C):
            total = total + torch.sum(ksum[b, h, tile_c, :], dim=0)
        kf = k[b, h, tile_s, :].to(torch.float32) - (total / S)[None, :]  # [bs, D] smoothed
        kf = torch.where((tile_s.index < S)[:, None], kf, 0.0)
        sk = torch.clamp(torch.amax(torch.amax(torch.abs(kf), dim=1), dim=0), min=1e-12) / 127.0
        kq = kf / sk
        k8[b, h, tile_s, :] = (kq + torch.where(kq >= 0, 0.5, -0.5)).to(torch.int8)
        kscale[b, h, tile_s] = hl.full([tile_s], 1.0, dtype=torch.float32) * sk


def _scores(q8: torch.Tensor, sq: torch.Tensor, kt: torch.Tensor, ks: torch.Tensor, tile_m: Any, tile_n: Any,
            d: int) -> torch.Tensor:
    """Dequantized Q K^T of one [bm, bn] block in the log2 domain (traced into the kernel)."""
    if d >= 32:  # int8 tensor cores (Triton's int8 dot needs K >= 32)
        s32 = hl.dot(q8, kt.T, acc=hl.zeros([tile_m, tile_n], dtype=torch.int32)).to(torch.float32)
    else:  # tiny head dims (tests): the same integer products, exact in fp32
        s32 = torch.sum(q8.to(torch.float32).unsqueeze(1) * kt.to(torch.float32).unsqueeze(0), dim=2)
    return s32 * (ks * sq).unsqueeze(0)


def _online_softmax(s: torch.Tensor, vt: torch.Tensor, m_i: torch.Tensor, l_i: torch.Tensor,
                    acc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One key block of the exp2 online softmax: the new row max, row sum and P V accumulator."""
    m_new = torch.maximum(m_i, torch.amax(s, dim=1))
    p = torch.exp2(s - m_new.unsqueeze(1))
    alpha = torch.exp2(m_i - m_new)
    l_i = l_i * alpha + torch.sum(p, dim=1)
    acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha.unsqueeze(1))
    return m_new, l_i, acc


@helion.kernel(static_shapes=False)
def sage_attn(
    q: torch.Tensor,  # [B, Hq, S, D] bf16/fp16
    k8: torch.Tensor,  # [B, Hkv, S, D] int8 smoothed keys
    kscale: torch.Tensor,  # [B, Hkv, S] fp32 per-token (per-block) key scales
    v: torch.Tensor,  # [B, Hkv, S, D]
    out: torch.Tensor,  # [B, Hq, S, D], written
    qk_scale: float,  # sm_scale * log2(e), folded into Q before quantization
    s_full: int,  # non-causal: S rounded down to a multiple of BLOCK_N (the keys of whole blocks)
    causal: hl.constexpr,
    whole_blocks: hl.constexpr,  # s_full > 0
) -> None:
    # causal: the key blocks left of the Q block's diagonal run without any mask, the diagonal block(s) with the
    # causal one; this needs BN to divide BM (both powers of two, BN <= BM: checked by the launcher).  Non-causal:
    # the whole key blocks without a mask, then the partial last one (if S is not a multiple of BN) masked past S.
    B, Hq, S = q.size(0), q.size(1), q.size(2)
    D = hl.specialize(q.size(3))
    G = Hq // k8.size(1)
    block_m = hl.register_block_size(S)
    block_n = hl.register_block_size(S)
    for tile_m, tile_h, tile_b in hl.tile([S, Hq, B], block_size=[block_m, 1, 1]):
        b, h = tile_b.begin, tile_h.begin
        kh = h // G
        qf = q[b, h, tile_m, :].to(torch.float32) * qk_scale  # [bm, D] (rows past S load 0)
        sq = torch.clamp(torch.amax(torch.amax(torch.abs(qf), dim=1), dim=0), min=1e-12) / 127.0
        qq = qf / sq
        q8 = (qq + torch.where(qq >= 0, 0.5, -0.5)).to(torch.int8)
        m_i = hl.full([tile_m], float("-inf"), dtype=torch.float32)
        l_i = hl.zeros([tile_m], dtype=torch.float32)
        acc = hl.zeros([tile_m, D], dtype=torch.float32)
        if causal:
            for tile_n in hl.tile(0, tile_m.begin, block_size=block_n):  # below the diagonal: no mask
                s = _scores(q8, sq, k8[b, kh, tile_n, :], kscale[b, kh, tile_n], tile_m, tile_n, D)
                m_i, l_i, acc = _online_softmax(s, v[b, kh, tile_n, :], m_i, l_i, acc)
            for tile_n in hl.tile(tile_m.begin, tile_m.end, block_size=block_n):  # tile_m.end: min(begin + bm, S)
                s = _scores(q8, sq, k8[b, kh, tile_n, :], kscale[b, kh, tile_n], tile_m, tile_n, D)
                s = torch.where(tile_n.index.unsqueeze(0) <= tile_m.index.unsqueeze(1), s, float("-inf"))
                m_i, l_i, acc = _online_softmax(s, v[b, kh, tile_n, :], m_i, l_i, acc)
        else:
            if whole_blocks:  # (s_full > 0: a loop over 0 keys would trace at a specialized size 0)
                for tile_n in hl.tile(0, s_full, block_size=block_n):  # whole key blocks: no mask
                    s = _scores(q8, sq, k8[b, kh, tile_n, :], kscale[b, kh, tile_n], tile_m, tile_n, D)
                    m_i, l_i, acc = _online_softmax(s, v[b, kh, tile_n, :], m_i, l_i, acc)
            for tile_n in hl.tile(s_full, S, block_size=block_n):  # the partial last block, if any
                s = _scores(q8, sq, k8[b, kh, tile_n, :], kscale[b, kh, tile_n], tile_m, tile_n, D)
                s = torch.where((tile_n.index < S).unsqueeze(0), s, float("-inf"))
                m_i, l_i, acc = _online_softmax(s, v[b, kh, tile_n, :], m_i, l_i, acc)
        out[b, h, tile_m, :] = (acc / l_i.unsqueeze(1)).to(out.dtype)


def colsum_chunk(b: int, hkv: int, s: int) -> int:
    """Tokens per chunk of the K mean (a power of two >= 256): ~2 programs per SM, <= 64 chunks per head."""
    want = -(-2 * sm_count() // max(1, b * hkv))
    chunks = max(1, min(64, want, -(-s // 256)))
    return max(256, 1 << (-(-s // chunks) - 1).bit_length())


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    """K column sums: 128-row steps over 8 warps, the loop pipelined 3 deep.  Attention: 64 x 64 tiles over 4 warps
    (BLOCK_N 64 as SageAttention's K blocks).  H200 probes: B = 1, S = 2048, causal
    (ports/configs/h200/shortfalls2.probe-20261204.txt): the K colsum launch 18.6 -> 8.7 us, the whole call
    83.6 -> 66.5 us at Hq = 5 (SageAttention 75.4) and 83.4 -> 70.4 us at Hq = 8 with 64- instead of 128-row Q
    blocks; non-causal S = 8192 Hq = 32 (round4.probe-20261204.txt) 128 x 64 / 8 warps 2909 us, 64 x 64 / 4 warps
    2663 (SageAttention 2694); causal S = 8192 Hq = 32 1460 -> 1291 us and S = 16384 Hq = 5 988 -> 880
    (round5.probe-20261204.txt).  At ~230 registers a 4-warp CTA fits twice per SM, and two independent CTAs
    overlap one's softmax with the other's dots where one 8-warp CTA of the same rows cannot."""
    s, d = int(dims["S"]), int(dims["D"])
    bc = pow2_at_most(128, s, floor=16)
    bm = bn = pow2_at_most(64, s, floor=16)
    return {
        "sage_k_colsum": {"block_sizes": [bc], "num_warps": 8 if bc >= 128 else 4, "range_num_stages": [0, 3]},
        "sage_k_quant": {"block_sizes": [bn, 1], "num_warps": 4},  # BLKK = 64 as SageAttention's K blocks
        "sage_attn": {"block_sizes": [bm, bn], "num_warps": 4, "num_stages": 3 if d <= 128 else 2},
    }


class HelionSageAttn(HelionPort):
    kernel: ClassVar[str] = "sageattn"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    notes: ClassVar[tuple[str, ...]] = (
        "K mean as parallel chunk column sums + per-block K int8 quant (2 launches); Q quantized per block inside "
        "the attention kernel (no Q quant launch, no int8 Q round trip); int8 QK^T, fp32 online softmax, PV in "
        "V's dtype with fp32 accumulate",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        b, hkv, s, d = k.shape
        chunk = colsum_chunk(b, hkv, s)
        c = -(-s // chunk)
        ksum = torch.empty(b, hkv, c, d, dtype=torch.float32, device=k.device)
        k8 = torch.empty(b, hkv, s, d, dtype=torch.int8, device=k.device)
        kscale = torch.empty(b, hkv, s, dtype=torch.float32, device=k.device)
        qk_scale = float(inputs["sm_scale"]) * LOG2E
        bm, bn = configs["sage_attn"]["block_sizes"]
        if bool(inputs["causal"]) and (bn > bm or bm % bn):
            raise ValueError(f"sageattn port: causal needs BLOCK_N ({bn}) dividing BLOCK_M ({bm})")
        return [Launch(sage_k_colsum, (k, ksum, chunk)), Launch(sage_k_quant, (k, ksum, k8, kscale)),
                Launch(sage_attn, (q, k8, kscale, v, out, qk_scale, s - s % bn, bool(inputs["causal"]),
                                  s >= bn))]


IMPL = HelionSageAttn()

if __name__ == "__main__":
    check_main(IMPL)
