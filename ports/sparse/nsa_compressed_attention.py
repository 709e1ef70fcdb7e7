"""Helion port of NSA compressed-branch attention, forward (catalog row 32, nsa-triton
`compressed_attention.forward_kernel`).

    out[t, i] = sum_{c < Tc, c*d + l - 1 <= t} softmax_c(q[t, i] . kc[c, i // G] * scale) vc[c, i // G]  (0: none)
    q [N, Hq, D] packed tokens; kc/vc [Nc, Hkv, D] packed compressed entries; cu_seqlens_q/_k [B + 1]; out like q

Flash forward, one launch, program (sequence b, KV head kh, row block): the rows of a program are (token, query
head) pairs of the KV head's group, token-major (row r -> token r // G, head kh*G + r % G, gathered from the flat
[N*Hq, D] view), so the G heads that share a compressed K/V tile use it in one [BM, D] x [D, BN] tensor-core
product and K/V are read once per group instead of once per head (the upstream runs one program per query head).
The key loop stops at the last entry the block's last token sees ((t - l + 1) // d + 1), only the causal edge
needs the mask; exp2 online softmax in fp32, P rounded to the KV dtype for the PV product; rows that see no entry
(t < l - 1) write 0.  Starts and lengths are read in-kernel from cu_seqlens (no host sync); row blocks are issued
last-first (more keys).
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
def nsa_compressed_fwd(
    q: torch.Tensor,  # [N * Hq, D] bf16 (row = token * Hq + head)
    k: torch.Tensor,  # [Nc, Hkv, D] compressed keys
    v: torch.Tensor,  # [Nc, Hkv, D] compressed values
    cu_q: torch.Tensor,  # [B + 1] int32
    cu_k: torch.Tensor,  # [B + 1] int32
    out: torch.Tensor,  # [N * Hq, D], written
    Hq: int,  # query heads
    n_mtiles: int,  # cdiv(max_seqlen_q * G, BM)
    qk_scale: float,  # scale * log2(e)
    l_win: int,  # compression window l
    d_str: int,  # compression stride d
    BM: hl.constexpr,  # (token, head) rows per program
) -> None:
    Hkv = k.size(1)
    B = cu_q.size(0) - 1
    D = hl.specialize(q.size(1))
    G = Hq // Hkv
    for kh, mt, b in hl.grid([Hkv, n_mtiles, B]):
        q0 = cu_q[b]
        k0 = cu_k[b]
        seq_len = cu_q[b + 1] - q0
        n_c = cu_k[b + 1] - k0
        r_begin = (n_mtiles - 1 - mt) * BM  # longest rows first
        r_end = torch.where(r_begin + BM < seq_len * G, r_begin + BM, seq_len * G)
        t_last = (r_end - 1) // G
        ended = t_last + 1 >= l_win  # the first window has ended (no negative floor division below)
        n_keys = torch.where(ended, torch.where(ended, t_last + 1 - l_win, 0) // d_str + 1, 0)
        n_keys = torch.where(n_keys < n_c, n_keys, n_c)  # entries the block's last token sees
        for tm in hl.tile(r_begin, r_end, block_size=BM):  # one step: its mask is the sequence's rows
            tok = tm.index // G
            rows = (q0 + tok) * Hq + kh * G + (tm.index - tok * G)
            qb = q[rows, :]  # [BM, D]
            m_i = hl.full([tm], float("-inf"), dtype=torch.float32)
            l_i = hl.zeros([tm], dtype=torch.float32)
            acc = hl.zeros([tm, D], dtype=torch.float32)
            for tn in hl.tile(0, n_keys):
                c = tn.index
                kt = k[k0 + c, kh, :]  # [BN, D]
                vt = v[k0 + c, kh, :]
                s = hl.dot(qb, kt.T, out_dtype=torch.float32) * qk_scale  # [BM, BN]
                vis = (c[None, :] * d_str + l_win - 1 <= tok[:, None]) & (c[None, :] < n_keys)
                s = torch.where(vis, s, float("-inf"))
                m_new = torch.maximum(m_i, torch.amax(s, dim=1))
                m_use = torch.where(m_new > float("-inf"), m_new, 0.0)
                p = torch.exp2(s - m_use[:, None])
                alpha = torch.exp2(m_i - m_use)
                l_i = l_i * alpha + torch.sum(p, dim=1)
                acc = hl.dot(p.to(vt.dtype), vt, acc=acc * alpha[:, None])
                m_i = m_new
            seen = l_i > 0.0
            o = torch.where(seen[:, None], acc / torch.where(seen, l_i, 1.0)[:, None], 0.0)
            out[rows, :] = o.to(out.dtype)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    b, t, hq, hkv, d = (int(dims[k]) for k in ("B", "T", "Hq", "Hkv", "D"))
    g = max(1, hq // hkv)
    bm = pow2_at_most(128, t * g, floor=16)
    if bm > 64 and b * hkv * -(-t * g // bm) < 2 * sm_count():  # too few programs for the SMs: halve the block
        bm = 64
    tc = max(1, (t - int(dims["l"])) // int(dims["d"]) + 1)
    bn = pow2_at_most(64 if d <= 128 else 32, tc, floor=16)
    return {"nsa_compressed_fwd": {"block_m": bm, "block_sizes": [bn], "num_warps": 8 if bm >= 128 else 4,
                                   "num_stages": 3 if d <= 128 else 2}}


class HelionNsaCompressedAttention(HelionPort):
    kernel: ClassVar[str] = "nsa_compressed_attention"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    host_keys: ClassVar[tuple[str, ...]] = ("block_m",)
    notes: ClassVar[tuple[str, ...]] = (
        "flash forward, one launch: a KV group's (token, head) pairs share each compressed K/V tile (one read per "
        "group), key loop cut at the block's last visible entry, exp2 online softmax, cu_seqlens read in-kernel",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        return [{"block_m": 64}, {"block_m": 128}]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        q, k = inputs["q"], inputs["k"]
        n, hq, d = q.shape
        g = hq // k.shape[1]
        bm = int(configs["nsa_compressed_fwd"]["block_m"])
        n_mtiles = max(1, -(-int(inputs["max_seqlen_q"]) * g // bm))
        qk_scale = float(inputs["scale"]) * LOG2E
        return [Launch(nsa_compressed_fwd, (q.view(n * hq, d), k, inputs["v"], inputs["cu_seqlens_q"],
                                            inputs["cu_seqlens_k"], out.view(n * hq, d), hq, n_mtiles, qk_scale,
                                            int(inputs["kernel_size"]), int(inputs["kernel_stride"]), bm))]


IMPL = HelionNsaCompressedAttention()

if __name__ == "__main__":
    check_main(IMPL)
