"""Helion port of the blockwise triangular inverse (catalog row 26; fla `solve_tril`, fla/ops/utils/solve_tril.py,
vLLM 0.33.0's copy).

For every 64-token chunk of every sequence and head, with A's chunk block strictly lower triangular:

    X = (I + A)^-1        A [1, L, HV, 64] fp32 -> X [1, L, HV, 64] bf16

One program per (head, chunk, sequence), in 16x16 blocks (A viewed as [.., 4, 16], no register slicing needed):
the four diagonal blocks are inverted together by a 16-step forward substitution on X_b^T in registers (rows of A
read straight from L1/L2), then the six blocks below the diagonal are merged exactly as a block forward
substitution, X_ij = -D_i sum_{j <= m < i} A_im X_mj, as fp32 broadcast-reduce products (no TF32, no power series);
each 16-row block row is stored once in bf16 with a row mask at the sequence end.  ~16 dependent steps instead of
64 keeps it near the memory bound (4 B in + 2 B out per element).  Equal-length packed sequences (checked in
prepare).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main
from ports.linear.chunk_scaled_dot_kkt import equal_lengths, seqs


@helion.kernel(static_shapes=False)
def solve_tril_kernel(
    a: torch.Tensor,  # [N, T, HV, 4, 16] fp32 view of A [N, T, HV, 64], strictly lower per 64-token chunk
    x: torch.Tensor,  # [N, T, HV, 4, 16] view of the output, written: (I + A)^-1 per chunk
) -> None:
    N, T, HV = a.size(0), a.size(1), a.size(2)
    hl.specialize(a.size(3))
    S = hl.specialize(a.size(4))
    for tile_h, tile_t, tile_n in hl.tile([HV, T, N], block_size=[1, 4 * S, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        r = hl.arange(S)
        t0 = tile_t.begin
        # 16x16 diagonal blocks: forward substitution on X_b^T, the four blocks in one 16-step loop (four distinct
        # identity tiles: one tensor bound to four names is carried through the loop as one by Helion)
        xt0 = torch.where(r[:, None] == r[None, :], 1.0, 0.0)
        xt1 = torch.where(r[:, None] == r[None, :], 1.0, 0.0)
        xt2 = torch.where(r[:, None] == r[None, :], 1.0, 0.0)
        xt3 = torch.where(r[:, None] == r[None, :], 1.0, 0.0)
        for k in hl.grid(S):
            low = r < k
            a0 = torch.where(low, a[i_n, min(t0 + k, T - 1), i_h, 0, :], 0.0)
            a1 = torch.where(low, a[i_n, min(t0 + S + k, T - 1), i_h, 1, :], 0.0)
            a2 = torch.where(low, a[i_n, min(t0 + 2 * S + k, T - 1), i_h, 2, :], 0.0)
            a3 = torch.where(low, a[i_n, min(t0 + 3 * S + k, T - 1), i_h, 3, :], 0.0)
            at_k = r[None, :] == k
            xt0 = xt0 - torch.where(at_k, torch.sum(xt0 * a0[None, :], dim=1)[:, None], 0.0)
            xt1 = xt1 - torch.where(at_k, torch.sum(xt1 * a1[None, :], dim=1)[:, None], 0.0)
            xt2 = xt2 - torch.where(at_k, torch.sum(xt2 * a2[None, :], dim=1)[:, None], 0.0)
            xt3 = xt3 - torch.where(at_k, torch.sum(xt3 * a3[None, :], dim=1)[:, None], 0.0)
        d0, d1, d2, d3 = xt0.T, xt1.T, xt2.T, xt3.T
        # rows of block-row i (clamped loads, masked stores past the sequence end)
        rows1 = t0 + S + r
        rows2 = t0 + 2 * S + r
        rows3 = t0 + 3 * S + r
        in1 = torch.where(rows1 < T, rows1, T - 1)
        in2 = torch.where(rows2 < T, rows2, T - 1)
        in3 = torch.where(rows3 < T, rows3, T - 1)
        a10 = a[i_n, in1, i_h, 0, :]
        a20 = a[i_n, in2, i_h, 0, :]
        a21 = a[i_n, in2, i_h, 1, :]
        a30 = a[i_n, in3, i_h, 0, :]
        a31 = a[i_n, in3, i_h, 1, :]
        a32 = a[i_n, in3, i_h, 2, :]
        # block merges, fp32 on CUDA cores: X_ij = -D_i sum_{j <= m < i} A_im X_mj
        x10 = -torch.sum(d1[:, :, None] * torch.sum(a10[:, :, None] * d0[None, :, :], dim=1)[None, :, :], dim=1)
        x21 = -torch.sum(d2[:, :, None] * torch.sum(a21[:, :, None] * d1[None, :, :], dim=1)[None, :, :], dim=1)
        x32 = -torch.sum(d3[:, :, None] * torch.sum(a32[:, :, None] * d2[None, :, :], dim=1)[None, :, :], dim=1)
        p20 = torch.sum(a20[:, :, None] * d0[None, :, :], dim=1) + torch.sum(a21[:, :, None] * x10[None, :, :], dim=1)
        x20 = -torch.sum(d2[:, :, None] * p20[None, :, :], dim=1)
        p31 = torch.sum(a31[:, :, None] * d1[None, :, :], dim=1) + torch.sum(a32[:, :, None] * x21[None, :, :], dim=1)
        x31 = -torch.sum(d3[:, :, None] * p31[None, :, :], dim=1)
        p30 = (torch.sum(a30[:, :, None] * d0[None, :, :], dim=1) + torch.sum(a31[:, :, None] * x10[None, :, :], dim=1)
               + torch.sum(a32[:, :, None] * x20[None, :, :], dim=1))
        x30 = -torch.sum(d3[:, :, None] * p30[None, :, :], dim=1)
        zero = d0 * 0.0
        rows0 = t0 + r
        in0 = torch.where(rows0 < T, rows0, T - 1)
        m0 = (rows0 < T)[:, None]
        m1 = (rows1 < T)[:, None]
        m2 = (rows2 < T)[:, None]
        m3 = (rows3 < T)[:, None]
        dt = x.dtype
        hl.store(x, [i_n, in0, i_h, 0, r], d0.to(dt), extra_mask=m0)
        hl.store(x, [i_n, in0, i_h, 1, r], zero.to(dt), extra_mask=m0)
        hl.store(x, [i_n, in0, i_h, 2, r], zero.to(dt), extra_mask=m0)
        hl.store(x, [i_n, in0, i_h, 3, r], zero.to(dt), extra_mask=m0)
        hl.store(x, [i_n, in1, i_h, 0, r], x10.to(dt), extra_mask=m1)
        hl.store(x, [i_n, in1, i_h, 1, r], d1.to(dt), extra_mask=m1)
        hl.store(x, [i_n, in1, i_h, 2, r], zero.to(dt), extra_mask=m1)
        hl.store(x, [i_n, in1, i_h, 3, r], zero.to(dt), extra_mask=m1)
        hl.store(x, [i_n, in2, i_h, 0, r], x20.to(dt), extra_mask=m2)
        hl.store(x, [i_n, in2, i_h, 1, r], x21.to(dt), extra_mask=m2)
        hl.store(x, [i_n, in2, i_h, 2, r], d2.to(dt), extra_mask=m2)
        hl.store(x, [i_n, in2, i_h, 3, r], zero.to(dt), extra_mask=m2)
        hl.store(x, [i_n, in3, i_h, 0, r], x30.to(dt), extra_mask=m3)
        hl.store(x, [i_n, in3, i_h, 1, r], x31.to(dt), extra_mask=m3)
        hl.store(x, [i_n, in3, i_h, 2, r], x32.to(dt), extra_mask=m3)
        hl.store(x, [i_n, in3, i_h, 3, r], d3.to(dt), extra_mask=m3)


class HelionSolveTril(HelionPort):
    kernel: ClassVar[str] = "solve_tril"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: 16x16 diagonal inverses by fp32 substitution, fp32 block merges, one bf16 store per block",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"solve_tril_kernel": {"num_warps": 4, "num_stages": 1}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        a = inputs["A"]
        n, t = equal_lengths(inputs["cu_seqlens"], a.shape[1])
        if a.shape[-1] != 64:
            raise ValueError("solve_tril port: 64-token chunks (4 x 16 blocks) expected")
        blocks = (n, t, a.shape[2], 4, 16)
        return [Launch(solve_tril_kernel, (seqs(a, n, t).view(blocks), seqs(out, n, t).view(blocks)))]


IMPL = HelionSolveTril()

if __name__ == "__main__":
    check_main(IMPL)
