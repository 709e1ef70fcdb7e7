"""Helion port of the AWQ int4 GEMM (catalog row 87; vLLM 0.33.0 `awq_gemm_kernel` via `awq_gemm_triton`, the
path vLLM's AWQ linear takes under 256 tokens).

    C[m, n] = sum_g s[g, n] * sum_{k in g} x[m, k] * (w4[k, n] - z4[g, n])          groups g of G rows of K
    x [M, K] fp16, qweight [K, N/8] int32, qzeros [K/G, N/8] int32, scales [K/G, N] fp16 -> C [M, N] fp16

Unpacking is fused into the GEMM: each program gathers the packed int32 words of its [BK, BN] weight tile
(column n lives in word n // 8, nibble AWQ_REVERSE[n % 8]), subtracts the group's zero point and feeds the
exact small integers (fp16) to an fp16 tensor-core dot with fp32 accumulation; the group scale multiplies the
fp32 dot result once per K step (BK divides G, so one scale row per step): one fp32 rounding fewer than the
upstream, which rounds (w - z) * s to fp16 before its dot.  M = 1 runs a CUDA-core GEMV kernel instead.

Split-K (decode shapes whose output tiles cannot fill the SMs): the K range is cut into S chunks of a config
block (a multiple of G), each program writes its fp32 partial to a [S, M, N] scratch and `sum_splits` adds
them into C.  With S = 1 the GEMM writes C directly (the scratch is C viewed as [1, M, N]); no second launch.
Split choice, reduce kernel and launch list: ports/quantization/_gemm.py (shared by the quantized GEMMs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most
from ports.quantization._gemm import (
    check_out,
    reduce_config,
    split_block,
    split_k_launches,
    sum_splits,  # noqa: F401 (the kit finds kernels here)
)


@helion.kernel(static_shapes=False)
def awq_mm(
    x: torch.Tensor,  # [M, K] fp16
    qweight: torch.Tensor,  # [K, N // 8] int32
    qzeros: torch.Tensor,  # [K // G, N // 8] int32
    scales: torch.Tensor,  # [K // G, N] fp16
    ws: torch.Tensor,  # [S, M, N] fp32 partials, or C [M, N] fp16 viewed as [1, M, N]; written
    k_chunk: hl.constexpr,  # K per program (multiple of G; >= K: no split)
    block_k: hl.constexpr,  # K step, divides G
) -> None:
    M, K = x.size(0), x.size(1)
    NP = qweight.size(1)
    N = scales.size(1)
    G = K // scales.size(0)
    # tiles over packed columns: a [BK, BP] tile of int32 words expands to [BK, BP, 8] nibbles = [BK, 8 * BP]
    for tile_m, tile_p, outer_k in hl.tile([M, NP, K], block_size=[None, None, k_chunk]):
        j = hl.arange(8)
        shift = ((j % 2) * 4 + j // 2) * 4  # nibble of logical column j: AWQ_REVERSE = [0, 4, 1, 5, 2, 6, 3, 7]
        bn = tile_p.block_size * 8
        nidx = (tile_p.index[:, None] * 8 + j[None, :]).reshape(bn)  # output columns of this tile
        nmask = nidx < N
        acc = hl.zeros([tile_m, bn], dtype=torch.float32)
        for tile_k in hl.tile(outer_k.begin, outer_k.end, block_size=block_k):
            g = tile_k.begin // G
            q = qweight[tile_k, tile_p]
            zq = qzeros[g, tile_p]
            # nibble | 0x6400 is the fp16 bit pattern of 1024 + nibble: exact fp16 values without an int->float
            # conversion (quarter-rate on the SM); (1024 + w) - (1024 + z) = w - z exactly
            w = (((q[:, :, None] >> shift[None, None, :]) & 0xF) | 0x6400).to(torch.int16).view(torch.float16)
            z = (((zq[:, None] >> shift[None, :]) & 0xF) | 0x6400).to(torch.int16).view(torch.float16)
            wz = (w - z[None, :, :]).reshape(block_k, bn)
            d = hl.dot(x[tile_m, tile_k], wz, out_dtype=torch.float32)
            sc = hl.load(scales, [g, nidx], extra_mask=nmask)
            acc = acc + d * sc.to(torch.float32)[None, :]
        hl.store(ws, [outer_k.id, tile_m, nidx], acc.to(ws.dtype), extra_mask=nmask[None, :])


@helion.kernel(static_shapes=False)
def awq_mv(
    x: torch.Tensor,  # [1, K] fp16
    qweight: torch.Tensor,  # [K, N // 8] int32
    qzeros: torch.Tensor,  # [K // G, N // 8] int32
    scales: torch.Tensor,  # [K // G, N] fp16
    ws: torch.Tensor,  # [S, 1, N] fp32 partials, or C [1, N] fp16 viewed as [1, 1, N]; written
    k_chunk: hl.constexpr,
    block_k: hl.constexpr,
) -> None:
    # M = 1 (a single decode token): a GEMV on the CUDA cores.  The dot kernel cannot take M = 1: Helion
    # specializes the size-1 dim, pads the dot's row block to 16 and then stores all 16 rows to row 0 (a race
    # that can leave the zero padding rows in C); here no tile spans M.
    K = x.size(1)
    NP = qweight.size(1)
    N = scales.size(1)
    G = K // scales.size(0)
    for outer_k, tile_p in hl.tile([K, NP], block_size=[k_chunk, None]):
        j = hl.arange(8)
        shift = ((j % 2) * 4 + j // 2) * 4
        bn = tile_p.block_size * 8
        nidx = (tile_p.index[:, None] * 8 + j[None, :]).reshape(bn)
        nmask = nidx < N
        acc = hl.zeros([bn], dtype=torch.float32)
        for tile_k in hl.tile(outer_k.begin, outer_k.end, block_size=block_k):
            g = tile_k.begin // G
            q = qweight[tile_k, tile_p]
            zq = qzeros[g, tile_p]
            w = (((q[:, :, None] >> shift[None, None, :]) & 0xF) | 0x6400).to(torch.int16).view(torch.float16)
            z = (((zq[:, None] >> shift[None, :]) & 0xF) | 0x6400).to(torch.int16).view(torch.float16)
            wz = (w - z[None, :, :]).to(torch.float32)
            xv = x[0, tile_k].to(torch.float32)
            part = torch.sum(wz * xv[:, None, None], dim=0).reshape(bn)
            sc = hl.load(scales, [g, nidx], extra_mask=nmask)
            acc = acc + part * sc.to(torch.float32)
        hl.store(ws, [outer_k.id, 0, nidx], acc.to(ws.dtype), extra_mask=nmask)


def default_configs(dims: Mapping[str, Any]) -> Configs:
    """Host keys k_chunk (K per program, a multiple of G) and block_k (the K step, dividing G: one zero / scale
    row per step), passed as constexprs; awq_mm block_sizes = [BM, BP], awq_mv = [BP], BP in packed int32 columns
    (8 outputs each).  BK = min(G, 64).  M >= 2: BM the smallest of 16 / 32 / 64 covering M; BN = 8 * BP is 128,
    or 64 (32-byte packed rows: still whole DRAM sectors) when 128 leaves SMs idle; 4 warps, 3 stages; split-K
    where the tiles cannot give 2 programs per SM (`split_block`).  M = 1: BN 128 (64-byte packed weight rows),
    split-K the same way.  The final sum of split partials: [<= 4 rows, <= 256 columns] tiles."""
    m, k, n, g = int(dims["M"]), int(dims["K"]), int(dims["N"]), int(dims["G"])
    bk = pow2_at_most(min(g, 64), k, floor=16)
    red = reduce_config(m, n)
    if m == 1:
        bn = pow2_at_most(128, n, floor=16)
        chunk = split_block(k, max(g, bk), math.ceil(n / bn), m, n, 0.5, 2.0)
        return {"awq_mv": {"k_chunk": chunk, "block_k": bk, "block_sizes": [bn // 8], "num_warps": 4,
                           "num_stages": 3}, "sum_splits": red}
    bm = pow2_at_most(64, m, floor=16)
    bn = fill_sms(pow2_at_most(128, n, floor=32), 64, lambda b: math.ceil(m / bm) * math.ceil(n / b), per_sm=1)
    chunk = split_block(k, max(g, bk), math.ceil(m / bm) * math.ceil(n / bn), m, n, 0.5, 2.0)
    return {"awq_mm": {"k_chunk": chunk, "block_k": bk, "block_sizes": [bm, bn // 8], "num_warps": 4,
                       "num_stages": 3}, "sum_splits": red}


class HelionAwqGemm(HelionPort):
    kernel: ClassVar[str] = "awq_gemm"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp16",)
    host_keys: ClassVar[tuple[str, ...]] = ("k_chunk", "block_k")
    notes: ClassVar[tuple[str, ...]] = ("int4 unpack + zero point fused into the GEMM's B loads, group scale on "
                                        "the fp32 dot per K step; split-K partials only where tiles < SMs",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        x, qw, qz, s = inputs["x"], inputs["qweight"], inputs["qzeros"], inputs["scales"]
        assert isinstance(out, torch.Tensor)
        m, k = x.shape
        n = s.shape[1]
        groups = s.shape[0]
        if k % groups or tuple(qw.shape) != (k, n // 8) or tuple(qz.shape) != (groups, n // 8) or n % 8:
            raise ValueError(f"bad shapes x {tuple(x.shape)} qweight {tuple(qw.shape)} qzeros {tuple(qz.shape)} "
                             f"scales {tuple(s.shape)}")
        check_out(out, m, n)
        name = "awq_mv" if m == 1 else "awq_mm"
        kern = awq_mv if m == 1 else awq_mm
        chunk, bk = int(configs[name]["k_chunk"]), int(configs[name]["block_k"])
        if chunk % (k // groups) or (k // groups) % bk:
            raise ValueError(f"{name}: K chunk {chunk} must be a multiple of G = {k // groups}, which BK {bk} "
                             f"must divide")
        return split_k_launches(kern, (x, qw, qz, s), out, k, chunk, bk)


IMPL = HelionAwqGemm()

if __name__ == "__main__":
    check_main(IMPL)
