"""Helion port of the W8A8 scaled GEMM (catalog row 88; vLLM 0.33.0 `triton_scaled_mm`, compressed-tensors W8A8).

    C[m, n] = sa[m] * sb[n] * sum_k A[m, k] * B[n, k]      A [M, K] 8-bit, B [N, K] 8-bit, sa [M, 1], sb [N, 1]
                                                           fp32 -> C [M, N] bf16

One kernel per dtype: int8_w8a8 runs int8 x int8 -> int32 tensor-core dots (exact integer sums, as upstream);
fp8_w8a8 runs e4m3 x e4m3 -> fp32 dots.  Both scales and the bf16 cast are fused into the epilogue (one fp32
multiply per output, one rounding).  B is read in its checkpoint layout [N, K] (K contiguous: the K-major
operand layout 8-bit wgmma wants), no transposed copy.  The output is written straight into the spec's buffer
(the upstream launcher allocates C, the adapter copies it).  Split-K, its reduce kernel and the launch list:
ports/quantization/_gemm.py (shared by the quantized GEMMs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most, sm_count
from ports.quantization._gemm import (
    check_out,
    reduce_config,
    split_block,
    split_k_launches,
    sum_splits,  # noqa: F401 (the kit finds kernels here)
    wave_block_n,
)

INT8 = "int8_w8a8"
FP8 = "fp8_w8a8"


@helion.kernel(static_shapes=False)
def scaled_mm_int8(
    a: torch.Tensor,  # [M, K] int8
    b: torch.Tensor,  # [N, K] int8
    sa: torch.Tensor,  # [M, 1] fp32
    sb: torch.Tensor,  # [N, 1] fp32
    ws: torch.Tensor,  # [S, M, N] fp32 split-K partials, or C [M, N] bf16 viewed as [1, M, N]; written
    k_chunk: hl.constexpr,  # K per program (>= K: no split)
) -> None:
    M, K = a.size(0), a.size(1)
    N = b.size(0)
    for tile_m, tile_n, outer_k in hl.tile([M, N, K], block_size=[None, None, k_chunk]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.int32)
        for tile_k in hl.tile(outer_k.begin, outer_k.end):
            acc = hl.dot(a[tile_m, tile_k], b[tile_n, tile_k].T, acc=acc)
        out = acc.to(torch.float32) * sa[tile_m, 0][:, None] * sb[tile_n, 0][None, :]
        ws[outer_k.id, tile_m, tile_n] = out.to(ws.dtype)


@helion.kernel(static_shapes=False)
def scaled_mm_fp8(
    a: torch.Tensor,  # [M, K] float8_e4m3fn
    b: torch.Tensor,  # [N, K] float8_e4m3fn
    sa: torch.Tensor,  # [M, 1] fp32
    sb: torch.Tensor,  # [N, 1] fp32
    ws: torch.Tensor,  # [S, M, N] fp32 split-K partials, or C [M, N] bf16 viewed as [1, M, N]; written
    k_chunk: hl.constexpr,  # K per program (>= K: no split)
) -> None:
    M, K = a.size(0), a.size(1)
    N = b.size(0)
    for tile_m, tile_n, outer_k in hl.tile([M, N, K], block_size=[None, None, k_chunk]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(outer_k.begin, outer_k.end):
            acc = hl.dot(a[tile_m, tile_k], b[tile_n, tile_k].T, acc=acc)
        out = acc * sa[tile_m, 0][:, None] * sb[tile_n, 0][None, :]
        ws[outer_k.id, tile_m, tile_n] = out.to(ws.dtype)


@helion.kernel(static_shapes=False)
def scaled_mv(
    a: torch.Tensor,  # [1, K] int8 / float8_e4m3fn
    b: torch.Tensor,  # [N, K] same dtype
    sa: torch.Tensor,  # [1, 1] fp32
    sb: torch.Tensor,  # [N, 1] fp32
    ws: torch.Tensor,  # [S, 1, N] fp32 split-K partials, or C [1, N] bf16 viewed as [1, 1, N]; written
    k_chunk: hl.constexpr,
) -> None:
    # M = 1 (a single decode token): a GEMV on the CUDA cores.  The dot kernels cannot take M = 1: Helion
    # specializes the size-1 dim, pads the dot's row block to 16 and then stores all 16 rows to row 0 (a race
    # that can leave the zero padding rows in C); here no tile spans M.
    K = a.size(1)
    N = b.size(0)
    acc_dtype = torch.int32 if a.dtype == torch.int8 else torch.float32
    for outer_k, tile_n in hl.tile([K, N], block_size=[k_chunk, None]):
        acc = hl.zeros([tile_n], dtype=acc_dtype)
        for tile_k in hl.tile(outer_k.begin, outer_k.end):
            x = a[0, tile_k].to(acc_dtype)
            acc = acc + torch.sum(b[tile_n, tile_k].to(acc_dtype) * x[None, :], dim=1, dtype=acc_dtype)
        ws[outer_k.id, 0, tile_n] = (acc.to(torch.float32) * sa[0, 0] * sb[tile_n, 0]).to(ws.dtype)


KERNELS = {INT8: scaled_mm_int8, FP8: scaled_mm_fp8}


def gemm8_config(m: int, n: int, k: int) -> dict[str, Any]:
    """Host key k_chunk (K per program) + [BM, BN, BK] for the 8-bit dot kernels (1 byte per element: a BK = 128
    row is 128 contiguous bytes whatever BN is).

    M <= 64 (decode): the smallest row tile covering M (>= 16, the dot minimum), BN halved from 128 (down to 32)
    until the grid has ~one program per SM, BK 256, 4 warps, 4 stages (~48 KB of loads in flight per program);
    M <= 128: 64 x 128 tiles, BK 128, 4 stages.  Larger M: 128-row tiles, BN by `wave_block_n`, BK 128, 8 warps,
    4 stages (3 for BN 256), grouped program order (l2_groupings 8) so the programs that
    share an A row block run together.  Split-K (`split_block`) whenever the tiles cannot give 2 programs per
    SM: the weight stream then runs on every SM."""
    sms = sm_count()
    if m <= 64:
        bm = pow2_at_most(64, m, floor=16)
        bn = fill_sms(pow2_at_most(128, n, floor=32), 32, lambda b: math.ceil(m / bm) * math.ceil(n / b), per_sm=1)
        bk = pow2_at_most(256, k, floor=32)
        cfg = {"block_sizes": [bm, bn, bk], "num_warps": 4, "num_stages": 4}
    elif m <= 128:
        bm, bn, bk = 64, pow2_at_most(128, n, floor=32), pow2_at_most(128, k, floor=32)
        cfg = {"block_sizes": [bm, bn, bk], "num_warps": 4, "num_stages": 4, "l2_groupings": [8]}
    else:
        bm, bn, bk = 128, wave_block_n(m, n, sms), pow2_at_most(128, k, floor=32)
        cfg = {"block_sizes": [bm, bn, bk], "num_warps": 8, "num_stages": 3 if bn == 256 else 4,
               "l2_groupings": [8]}
    tiles = math.ceil(m / bm) * math.ceil(n / bn)
    return {"k_chunk": split_block(k, bk, tiles, m, n, 1.0, 1.0), **cfg}


def gemv8_config(n: int, k: int) -> dict[str, Any]:
    """Host key k_chunk + [BN, BK] for the M = 1 GEMV: BK 256 (16-byte loads of 8-bit weights, 16 lanes per
    weight row), BN halved from 16 (down to 2) until N / BN gives ~4 programs per SM (the weight stream is the
    whole cost); split-K only if that still leaves SMs idle."""
    bk = pow2_at_most(256, k, floor=16)
    bn = fill_sms(pow2_at_most(16, n, floor=1), 2, lambda b: math.ceil(n / b), per_sm=4)
    return {"k_chunk": split_block(k, bk, math.ceil(n / bn), 1, n, 1.0, 1.0), "block_sizes": [bn, bk], "num_warps": 4,
            "num_stages": 4}


class HelionTritonScaledMM(HelionPort):
    kernel: ClassVar[str] = "triton_scaled_mm"
    dtypes: ClassVar[tuple[str, ...] | None] = (INT8, FP8)
    host_keys: ClassVar[tuple[str, ...]] = ("k_chunk",)
    notes: ClassVar[tuple[str, ...]] = ("per-token and per-channel scales and the bf16 cast fused into the GEMM "
                                        "epilogue; int8 dots accumulate in int32; B read as [N, K] in place; "
                                        "split-K fp32 partials + sum only where tiles < 2 per SM",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        if dtype not in KERNELS:
            raise ValueError(f"unknown dtype {dtype!r}")
        m, n, k = int(dims["M"]), int(dims["N"]), int(dims["K"])
        red = reduce_config(m, n)
        if m == 1:
            return {scaled_mv.name: gemv8_config(n, k), "sum_splits": red}
        return {KERNELS[dtype].name: gemm8_config(m, n, k), "sum_splits": red}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        a, b, sa, sb = inputs["A"], inputs["B"], inputs["sa"], inputs["sb"]
        assert isinstance(out, torch.Tensor)
        m, k = a.shape
        n = b.shape[0]
        if b.shape[1] != k or tuple(sa.shape) != (m, 1) or tuple(sb.shape) != (n, 1):
            raise ValueError(f"bad shapes A {tuple(a.shape)} B {tuple(b.shape)} sa {tuple(sa.shape)} "
                             f"sb {tuple(sb.shape)}")
        check_out(out, m, n)
        kern = scaled_mv if m == 1 else KERNELS[dtype]
        chunk = int(configs[kern.name]["k_chunk"])
        return split_k_launches(kern, (a, b, sa, sb), out, k, chunk)


IMPL = HelionTritonScaledMM()

if __name__ == "__main__":
    check_main(IMPL)
