"""Helion port of the chunk-scaled K K^T of the chunked gated delta rule (catalog row 103; vLLM 0.33.0
`chunk_scaled_dot_kkt_fwd`, fla `fla.ops.common.chunk_scaled_dot_kkt`).

Per sequence n, 64-token chunk, value head h (key head h // (HV / H)), rows i / columns j of the chunk:

    A[i, j] = beta_i (k_i . k_j) exp(g_i - g_j)  for j < i, else 0
    k [1, L, H, K] bf16; beta, g [1, L, HV] (g fp32 chunk-local cumsum) -> A [1, L, HV, 64] fp32

One program per (value head, chunk, sequence), value heads fastest so the GVA heads sharing a key head run
together (the key tile is read from L2 the second time).  The [64, K] key tile is one tensor-core dot with its own
transpose; gate, beta and the strict-lower mask are applied in fp32 on the [64, 64] accumulator, which is stored
whole (the zero upper triangle included, as the contract asks).  Memory-bound: the fp32 A write (256 B per token
and head) dominates.  Packed sequences must have equal lengths (the spec's inputs; cu_seqlens checked in
prepare): the packed tensors are then viewed as [N, T, ...] at no cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main

CHUNK = 64  # the upstreams' chunk (fla / vLLM / SGLang); the spec's A layout is [.., 64]


@helion.kernel(static_shapes=False)
def kkt_kernel(
    k: torch.Tensor,  # [N, T, H, K] bf16
    beta: torch.Tensor,  # [N, T, HV]
    g: torch.Tensor,  # [N, T, HV] fp32 chunk-local cumsum
    a: torch.Tensor,  # [N, T, HV, C] fp32, written
) -> None:
    N, T, HV = beta.size(0), beta.size(1), beta.size(2)
    hl.specialize(k.size(3))
    C = hl.specialize(a.size(3))
    group = HV // k.size(2)
    for tile_h, tile_t, tile_n in hl.tile([HV, T, N], block_size=[1, C, 1]):
        i_h = tile_h.begin
        i_n = tile_n.begin
        # columns: the chunk's C token slots (clamped to the sequence, masked past its end)
        cols = tile_t.begin + hl.arange(C)
        cols_in = torch.where(cols < T, cols, T - 1)
        kb = k[i_n, tile_t, i_h // group, :]  # [BT, K] rows of this chunk
        kc = k[i_n, cols_in, i_h // group, :]  # [C, K] (the same rows, C wide)
        dots = hl.dot(kb, kc.T)  # [BT, C] fp32
        gb = g[i_n, tile_t, i_h].to(torch.float32)
        gc = g[i_n, cols_in, i_h].to(torch.float32)
        bb = beta[i_n, tile_t, i_h].to(torch.float32)
        val = dots * torch.exp(gb[:, None] - gc[None, :]) * bb[:, None]
        keep = (tile_t.index[:, None] > cols[None, :]) & (cols[None, :] < T)
        a[i_n, tile_t, i_h, :] = torch.where(keep, val, 0.0)


def equal_lengths(cu: torch.Tensor, length: int) -> tuple[int, int]:
    """(N, T) of packed sequences that all have T tokens (cu_seqlens = 0, T, 2T, ..; structure read in prepare)."""
    n = cu.numel() - 1
    t = length // max(n, 1)
    if n < 1 or n * t != length or not torch.equal(cu.cpu(), torch.arange(0, (n + 1) * t, max(t, 1),
                                                                           dtype=cu.dtype)[:n + 1]):
        raise ValueError("chunked linear-attention ports: packed sequences of equal length expected")
    return n, t


def seqs(x: torch.Tensor, n: int, t: int) -> torch.Tensor:
    """[1, N * T, ...] -> [N, T, ...] view."""
    return x[0].view(n, t, *x.shape[2:])


def chunk_warps(k: int) -> dict[str, Any]:
    """A [64, K] x [K, 64] tile program: 4 warps up to K = 128, 8 beyond."""
    return {"num_warps": 4 if k <= 128 else 8, "num_stages": 2}


class HelionChunkScaledDotKKT(HelionPort):
    kernel: ClassVar[str] = "chunk_scaled_dot_kkt"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: key tile dot its transpose on tensor cores, gate / beta / strict mask in fp32 on the "
        "accumulator; GVA heads adjacent in the grid",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"kkt_kernel": chunk_warps(int(dims["K"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        k = inputs["k"]
        n, t = equal_lengths(inputs["cu_seqlens"], k.shape[1])
        args = (seqs(k, n, t), seqs(inputs["beta"], n, t), seqs(inputs["g"], n, t), seqs(out, n, t))
        return [Launch(kkt_kernel, args)]


IMPL = HelionChunkScaledDotKKT()

if __name__ == "__main__":
    check_main(IMPL)
