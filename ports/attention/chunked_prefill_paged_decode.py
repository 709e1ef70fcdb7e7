"""Helion port of chunked prefill + paged decode over vLLM's legacy paged KV layout (catalog row 14: vLLM
`chunked_prefill_paged_decode`: prefix_prefill `_fwd_kernel` for the chunks, `kernel_paged_attention_2d` for the
decodes of the same batch).

    out[i, h] = softmax_{j <= L_b - q_len_b + i}(q[i, h] . K_b[j, h // G] * scale) @ V_b[:, h // G]
    q [N, Hq, D] packed (cu_seqlens_q); key_cache [num_blocks, Hkv, D/x, 16, x]; value_cache [num_blocks, Hkv, D,
    16]; block_table [B, >= max_blocks]; seq_lens [B] (context + new tokens); out like q

One launch for the whole mixed batch (decodes and chunks alike): program (KV head, row block, sequence) owns
BM rows of the sequence's (new token, query head of the group) pairs, so one K/V page read serves all G
heads of the group and a decode (q_len 1) is a single G-row block instead of a 16-row tile per head.  K/V are
read a block of BP pages at a time through the block table: each page is one contiguous [D/x, 16, x] (K) or
[D, 16] (V) slab per KV head, loaded whole (16-byte vectors) and permuted in registers to [16 tokens, D]; the
new tokens are read from the cache too (vLLM wrote them there before attention), so the packed key/value inputs
are not needed.  exp2 online softmax in fp32, P rounded to the KV dtype for the PV product; page blocks left of
the row block's first causal limit run unmasked, only the diagonal strip is masked, nothing right of it is read.
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
PAGE = 16


@helion.kernel(static_shapes=False)
def chunked_paged_attention_fwd(
    q: torch.Tensor,  # [N * Hq, D] bf16/fp16 (rows: token-major, head-minor)
    key_cache: torch.Tensor,  # [num_blocks, Hkv, D / x, 16, x]
    value_cache: torch.Tensor,  # [num_blocks, Hkv, D, 16]
    block_table: torch.Tensor,  # [B, max_blocks] int32
    seq_lens: torch.Tensor,  # [B] int32 (context + new tokens)
    cu_q: torch.Tensor,  # [B + 1] int32
    out: torch.Tensor,  # [N * Hq, D], written
    n_mtiles: int,  # cdiv(max_seqlen_q * G, BM)
    qk_scale: float,  # sm_scale * log2(e)
    G: hl.constexpr,  # query heads per KV head
    BM: hl.constexpr,  # (token, head) rows per program
    BP: hl.constexpr,  # pages per K/V step
) -> None:
    Hkv, B = key_cache.size(1), seq_lens.size(0)
    D = hl.specialize(value_cache.size(2))
    page = hl.specialize(value_cache.size(3))
    for kh, mt, b in hl.grid([Hkv, n_mtiles, B]):
        q_start = cu_q[b]
        q_len = cu_q[b + 1] - q_start
        ctx = seq_lens[b] - q_len  # cached tokens before the new ones
        r_begin = (n_mtiles - 1 - mt) * BM  # longest causal rows first
        r_end = torch.where(r_begin + BM < q_len * G, r_begin + BM, q_len * G)
        for tm in hl.tile(r_begin, r_end, block_size=BM):  # one step: its mask is the sequence's rows
            t = tm.index // G  # new-token index of each row
            qrow = (q_start + t) * (Hkv * G) + kh * G + tm.index % G
            qb = q[qrow, :]  # [BM, D]
            m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
            l_i = hl.zeros([tm], dtype=torch.float32)
            acc = hl.zeros([tm, D], dtype=torch.float32)
            full_pages = (ctx + r_begin // G) // (BP * page) * BP  # whole page blocks every row sees
            for tp in hl.tile(0, full_pages, block_size=BP):
                blk = block_table[b, tp.index].to(torch.int64)  # [BP]
                kt = key_cache[blk, kh, :, :, :].permute(0, 2, 1, 3).reshape([-1, D])  # [BP*16, D]
                vt = value_cache[blk, kh, :, :].permute(0, 2, 1).reshape([-1, D])
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [BM, BP*16]
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                p = torch.exp2(s - m_new[:, None])
                alpha = torch.exp2(m_i - m_new)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            last_tok = ctx + (r_end - 1) // G  # the block's last row's causal limit
            for tp in hl.tile(full_pages, last_tok // page + 1, block_size=BP):  # the diagonal strip
                blk = block_table[b, tp.index].to(torch.int64)
                kt = key_cache[blk, kh, :, :, :].permute(0, 2, 1, 3).reshape([-1, D])
                vt = value_cache[blk, kh, :, :].permute(0, 2, 1).reshape([-1, D])
                tok = (tp.index[:, None] * page + hl.arange(page)[None, :]).reshape([-1])
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale
                s = torch.where(tok[None, :] <= ctx + t[:, None], s, float("-inf"))
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                p = torch.exp2(s - m_new[:, None])
                alpha = torch.exp2(m_i - m_new)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            out[qrow, :] = (acc / l_i[:, None]).to(out.dtype)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    hq, hkv, d, qn = (int(dims[k]) for k in ("Hq", "Hkv", "D", "Q"))
    g = max(1, hq // hkv)
    rows = max(1, qn) * g  # rows of the longest sequence
    bm = pow2_at_most(128, rows, floor=16)
    progs = hkv * (int(dims["Bd"]) + int(dims["Bp"]) * -(-rows // bm))
    if bm > 64 and progs < 2 * sm_count():
        bm = 64
    bp = 4 if d <= 128 else 2  # 64 / 32 keys per step
    return {"chunked_paged_attention_fwd": {"block_m": bm, "block_p": bp, "num_warps": 8 if bm >= 128 or d > 128 else 4,
                                            "num_stages": 3 if d <= 128 else 2}}


class HelionChunkedPrefillPagedDecode(HelionPort):
    kernel: ClassVar[str] = "chunked_prefill_paged_decode"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "block_p")
    notes: ClassVar[tuple[str, ...]] = (
        "one launch for decodes and chunks: GQA-packed (token, head) rows, whole legacy-layout pages read as "
        "contiguous slabs through the block table (new tokens from the cache), exp2 online softmax, unmasked "
        "blocks left of the causal strip",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def case_reason(self, case: Case, dtype: str) -> str | None:
        d, x = int(case.params["D"]), 8  # x = 16 bytes / 2-byte element
        if (d // x) & (d // x - 1):
            # the page slab [D/x, 16, x] is permuted and reshaped to [16, D] in registers: Helion needs the D/x
            # dim a power of two (every model head dim, 64/128/256, is)
            return f"helion port needs D / {x} a power of two (D={d})"
        return None

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        return [{"block_m": 128, "block_p": 4}, {"block_m": 64, "block_p": 4}, {"block_m": 128, "block_p": 8}]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q = inputs["q"]
        n, hq, d = q.shape
        hkv = inputs["key_cache"].shape[1]
        cfg = configs["chunked_paged_attention_fwd"]
        bm, bp = int(cfg["block_m"]), int(cfg["block_p"])
        g = hq // hkv
        n_mtiles = -(-int(inputs["max_seqlen_q"]) * g // bm)
        qk_scale = float(inputs["sm_scale"]) * LOG2E
        return [Launch(chunked_paged_attention_fwd, (q.view(n * hq, d), inputs["key_cache"], inputs["value_cache"],
                                                     inputs["block_table"], inputs["seq_lens"], inputs["cu_seqlens_q"],
                                                     out.view(n * hq, d), n_mtiles, qk_scale, g, bm, bp))]


IMPL = HelionChunkedPrefillPagedDecode()

if __name__ == "__main__":
    check_main(IMPL)
