"""Helion port of NSA selected-block attention, forward (catalog rows 31 nsa-triton `topk_sparse_attention`,
33 fla `parallel_nsa`, 34 nsa-impl `selection_attention`).

    out[b, t, i] = sum_{j in keys(t)} softmax_j(q[b, t, i] . k[b, j, h] * scale) v[b, j, h]      (h = i // G)
    keys(t) = { j <= t : j // BS in block_indices[b, t, h, :] }
    q [B, T, Hq, D]; k/v [B, T, Hkv, D]; block_indices [B, T, Hkv, S] int32 (valid first, -1 padding); out like q

One launch, one of two paths (default_configs picks by work, `use_dense`):

* `nsa_selection_fwd` (long sequences, big groups), program (token, KV head): all G query heads of the KV head
  as the rows of one [bg, D] tensor-core tile (bg >= 16, heads beyond G masked, so every group size runs, unlike
  fla's G >= 16), the token's selected blocks flattened into one key axis of S * BS slots streamed in BN-key
  tiles (slot j -> key block_indices[.., j // BS] * BS + j % BS, K/V rows gathered, so the loads of consecutive
  blocks pipeline), cut at the number of valid entries (counted in-kernel: no host sync, no work on padding).
* `nsa_selection_dense_fwd` (small G x T), program (KV head, row block, batch row): BM (token, head) rows of the
  group (token-major) against every causal key tile, the selection applied as a per-row mask (row selected the
  tile's block, BN divides BS); K/V read once per row block instead of once per token, full-size MMA tiles.

Both: exp2 online softmax in fp32, P rounded to the KV dtype for the PV product; query rows addressed through a
flat [B*T*Hq, D] view (no size-1 tensor dim feeds a dot); the longest work is issued first.
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
def nsa_selection_fwd(
    q: torch.Tensor,  # [N * Hq, D] bf16 (N = B * T tokens; row = token * Hq + head)
    k: torch.Tensor,  # [N, Hkv, D]
    v: torch.Tensor,  # [N, Hkv, D]
    idx: torch.Tensor,  # [N, Hkv, S] int32 selected blocks, valid first, -1 padding
    out: torch.Tensor,  # [N * Hq, D], written
    seq_t: int,  # T: tokens per batch row
    qk_scale: float,  # scale * log2(e)
    BS: hl.constexpr,  # selection block size
) -> None:
    N, Hkv = idx.size(0), idx.size(1)
    hl.specialize(idx.size(2))  # S: the ':' load of an index row needs a static size
    D = hl.specialize(q.size(1))
    G = q.size(0) // (N * Hkv)
    for n_rev, kh in hl.grid([N, Hkv]):
        n = N - 1 - n_rev  # last tokens (most valid blocks) first
        b = n // seq_t
        t = n - b * seq_t
        n_slots = torch.sum((idx[n, kh, :] >= 0).to(torch.int32)) * BS  # valid entries come first
        for tile_g in hl.tile(G):
            rows = (n * Hkv + kh) * G + tile_g.index  # [bg] query rows of KV head kh (lanes >= G masked)
            qb = q[rows, :]  # [bg, D]
            m_i = hl.full([tile_g], float("-inf"), dtype=torch.float32)
            l_i = hl.zeros([tile_g], dtype=torch.float32)
            acc = hl.zeros([tile_g, D], dtype=torch.float32)
            for tn in hl.tile(0, n_slots):
                j = tn.index
                blk = hl.load(idx, [n, kh, j // BS])
                key = blk * BS + j % BS
                ok = (blk >= 0) & (key <= t) & (j < n_slots)
                krow = b * seq_t + torch.where(ok, key, 0)
                kt = k[krow, kh, :]  # [bn, D] gathered (rows of one block are contiguous)
                vt = v[krow, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [bg, bn]
                s = torch.where(ok[None, :], s, float("-inf"))
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                m_use = torch.where(m_new > float("-inf"), m_new, 0.0)
                p = torch.exp2(s - m_use[:, None])
                alpha = torch.exp2(m_i - m_use)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            nonempty = l_i > 0.0
            o = torch.where(nonempty[:, None], acc / torch.where(nonempty, l_i, 1.0)[:, None], 0.0)
            out[rows, :] = o.to(out.dtype)


@helion.kernel(static_shapes=False)
def nsa_selection_dense_fwd(
    q: torch.Tensor,  # [N * Hq, D] bf16 (N = B * T tokens; row = token * Hq + head)
    k: torch.Tensor,  # [N, Hkv, D]
    v: torch.Tensor,  # [N, Hkv, D]
    idx: torch.Tensor,  # [N, Hkv, S] int32 selected blocks (-1 padding)
    out: torch.Tensor,  # [N * Hq, D], written
    seq_t: int,  # T: tokens per batch row
    n_mtiles: int,  # cdiv(T * G, BM)
    qk_scale: float,  # scale * log2(e)
    BS: hl.constexpr,  # selection block size
    BM: hl.constexpr,  # (token, head) rows per program
    BN: hl.constexpr,  # keys per step, divides BS (a host value, so tuning cannot make a tile straddle blocks)
) -> None:
    N, Hkv = idx.size(0), idx.size(1)
    hl.specialize(idx.size(2))
    D = hl.specialize(q.size(1))
    G = q.size(0) // (N * Hkv)
    B = N // seq_t
    for kh, mt, b in hl.grid([Hkv, n_mtiles, B]):
        r_begin = (n_mtiles - 1 - mt) * BM  # longest rows first
        r_end = min(r_begin + BM, seq_t * G)
        t_last = (r_end - 1) // G
        for tm in hl.tile(r_begin, r_end, block_size=BM):  # one step: its mask is the sequence's rows
            tok = tm.index // G
            rows = ((b * seq_t + tok) * Hkv + kh) * G + (tm.index - tok * G)
            qb = q[rows, :]  # [BM, D]
            sel = idx[b * seq_t + tok, kh, :]  # [BM, S] each row's selected blocks
            m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
            l_i = hl.zeros([tm], dtype=torch.float32)
            acc = hl.zeros([tm, D], dtype=torch.float32)
            for tn in hl.tile(0, t_last + 1, block_size=BN):  # every key up to the rows' last token
                kb = tn.begin // BS  # the tile's selection block
                hit = torch.amax((sel == kb).to(torch.int32), dim=1) > 0  # [BM] rows that selected block kb
                kt = k[b * seq_t + tn.index, kh, :]  # [BN, D]
                vt = v[b * seq_t + tn.index, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [BM, BN]
                ok = hit[:, None] & (tn.index[None, :] <= tok[:, None])
                s = torch.where(ok, s, float("-inf"))
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                m_use = torch.where(m_new > float("-inf"), m_new, 0.0)
                p = torch.exp2(s - m_use[:, None])
                alpha = torch.exp2(m_i - m_use)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            nonempty = l_i > 0.0
            o = torch.where(nonempty[:, None], acc / torch.where(nonempty, l_i, 1.0)[:, None], 0.0)
            out[rows, :] = o.to(out.dtype)


def use_dense(g: int, t: int, bs: int, s: int) -> bool:
    """Dense-masked path when its tensor-core work (G rows x T/2 causal keys per token, big tiles, K/V shared by a
    row block) is at most ~4x the per-token path's padded work (max(G, 16) rows x S*BS keys, K/V re-read per
    token from L2): small groups and short sequences."""
    return g * t <= 4 * max(g, 16) * s * bs


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    b, t, hq, hkv, d, bs, s = (int(dims[k]) for k in ("B", "T", "Hq", "Hkv", "D", "BS", "S"))
    g = max(1, hq // hkv)
    stages = 3 if d <= 128 else 2
    if use_dense(g, t, bs, s):
        bm = pow2_at_most(128 if d <= 128 else 64, t * g, floor=16)
        if bm > 64 and b * hkv * -(-t * g // bm) < 2 * sm_count():  # too few programs for the SMs
            bm = 64
        bn = 64 if d <= 128 else 32
        while bs % bn:  # a key tile never straddles two selection blocks
            bn //= 2
        return {"nsa_selection_dense_fwd": {"block_m": bm, "block_n": bn, "num_warps": 8 if bm >= 128 else 4,
                                            "num_stages": stages}}
    bg = pow2_at_most(64, g, floor=16)  # tensor-core M >= 16
    bn = pow2_at_most(64 if d <= 128 else 32, bs * s, floor=16)
    return {"nsa_selection_fwd": {"block_sizes": [bg, bn], "num_warps": 4, "num_stages": stages}}


class HelionNsaSelectionAttention(HelionPort):
    kernel: ClassVar[str] = "nsa_selection_attention"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "block_n")
    notes: ClassVar[tuple[str, ...]] = (
        "one launch; per-token path (long sequences, big groups): the group's G heads as one >= 16-row tensor-core "
        "tile (any G), selected blocks flattened into one gathered key axis cut at the in-kernel valid count; "
        "dense-masked path (small G x T): (token, head) row blocks over all causal blocks, selection as a per-row "
        "block mask; exp2 online softmax",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        if name != "nsa_selection_dense_fwd":
            return [{}]
        bn = int(default_configs({**dims, "T": 1}, dtype)["nsa_selection_dense_fwd"]["block_n"])
        return [{"block_m": bm, "block_n": bn} for bm in (64, 128)]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, k, v, idx = inputs["q"], inputs["k"], inputs["v"], inputs["block_indices"]
        b, t, hq, d = q.shape
        hkv, s = k.shape[2], idx.shape[-1]
        bs = int(inputs["block_size"])
        qk_scale = float(inputs["scale"]) * LOG2E
        flat = (q.view(b * t * hq, d), k.view(b * t, hkv, d), v.view(b * t, hkv, d), idx.view(b * t, hkv, s),
                out.view(b * t * hq, d), t)
        dense = "nsa_selection_dense_fwd" in configs
        if dense and "nsa_selection_fwd" in configs:  # both entries (a shipped one completed from the defaults)
            dense = use_dense(hq // hkv, t, bs, s)
        if not dense:
            return [Launch(nsa_selection_fwd, (*flat, qk_scale, bs))]
        cfg = configs["nsa_selection_dense_fwd"]
        bm, bn = int(cfg["block_m"]), int(cfg["block_n"])
        if bs % bn:
            raise ValueError(f"block_n {bn} must divide the selection block size {bs}")
        return [Launch(nsa_selection_dense_fwd, (*flat, -(-t * (hq // hkv) // bm), qk_scale, bs, bm, bn))]


IMPL = HelionNsaSelectionAttention()

if __name__ == "__main__":
    check_main(IMPL)
