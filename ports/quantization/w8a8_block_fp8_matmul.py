"""Helion port of the block-FP8 linear GEMM (catalog rows 66 vLLM `_w8a8_triton_block_scaled_mm`, 68 SGLang
`_w8a8_block_fp8_matmul`; DeepSeek-V3-style checkpoints).

    C[m, n] = sum_kb As[m, kb] * Bs[n // 128, kb] * sum_{k in kb} A[m, k] * B[n, k]
    A [M, K] e4m3, As [M, ceil(K/128)] fp32, B [N, K] e4m3, Bs [ceil(N/128), ceil(K/128)] fp32 -> C [M, N] bf16

One kernel: the K loop steps one 128-wide scale block at a time (block size 128 written as a literal, so it
always matches the quantization block), runs an e4m3 x e4m3 -> fp32 tensor-core dot per step and folds the two
block scales into the fp32 accumulator right there; the bf16 cast is the epilogue.  B is read in place as
[N, K] (K-major, what fp8 wgmma wants).  M = 1 takes a CUDA-core GEMV kernel (see `block_fp8_mv`).  The output
is written straight into the spec's buffer (both upstream launchers allocate C, the adapters copy it).

Split-K (decode on the narrow MLA projections, N = 576 / 1536 with K = 7168: a few dozen output tiles for 132
SMs): the K range is cut into S chunks of whole scale blocks, each program writes its fp32 partial to a
[S, M, N] scratch and `sum_splits` adds them into C.  With S = 1 the GEMM writes C directly (no second launch).
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
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most, sm_count
from ports.quantization._gemm import (
    check_out,
    reduce_config,
    split_block,
    split_k_launches,
    sum_splits,  # noqa: F401 (the kit finds kernels here)
    )

FP8 = "fp8_w8a8_block128"


@helion.kernel(static_shapes=False)
def block_fp8_mm(
    a: torch.Tensor,  # [M, K] float8_e4m3fn
    a_s: torch.Tensor,  # [M, ceil(K/128)] fp32
    b: torch.Tensor,  # [N, K] float8_e4m3fn
    b_s: torch.Tensor,  # [ceil(N/128), ceil(K/128)] fp32
    ws: torch.Tensor,  # [S, M, N] fp32 split-K partials, or C [M, N] bf16 viewed as [1, M, N]; written
    k_chunk: hl.constexpr,  # K per program, a multiple of 128 (>= K: no split)
) -> None:
    M, K = a.size(0), a.size(1)
    N = b.size(0)
    for tile_m, tile_n, outer_k in hl.tile([M, N, K], block_size=[None, None, k_chunk]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        nb = tile_n.index // 128
        for tile_k in hl.tile(outer_k.begin, outer_k.end, block_size=128):
            kb = tile_k.begin // 128
            d = hl.dot(a[tile_m, tile_k], b[tile_n, tile_k].T, out_dtype=torch.float32)
            acc = acc + d * a_s[tile_m, kb][:, None] * b_s[nb, kb][None, :]
        ws[outer_k.id, tile_m, tile_n] = acc.to(ws.dtype)


@helion.kernel(static_shapes=False)
def block_fp8_mv(
    a: torch.Tensor,  # [1, K] float8_e4m3fn
    a_s: torch.Tensor,  # [1, ceil(K/128)] fp32
    b: torch.Tensor,  # [N, K] float8_e4m3fn
    b_s: torch.Tensor,  # [ceil(N/128), ceil(K/128)] fp32
    ws: torch.Tensor,  # [S, 1, N] fp32 split-K partials, or C [1, N] bf16 viewed as [1, 1, N]; written
    k_chunk: hl.constexpr,
) -> None:
    # M = 1 (a single decode token): a GEMV on the CUDA cores.  A dot kernel cannot take M = 1: Helion
    # specializes the size-1 dim, pads the dot's row block to 16 and then stores all 16 rows to row 0 (a race
    # that can leave the zero padding rows in C); here no tile spans M.
    K = a.size(1)
    N = b.size(0)
    for outer_k, tile_n in hl.tile([K, N], block_size=[k_chunk, None]):
        acc = hl.zeros([tile_n], dtype=torch.float32)
        nb = tile_n.index // 128
        for tile_k in hl.tile(outer_k.begin, outer_k.end, block_size=128):
            kb = tile_k.begin // 128
            x = a[0, tile_k].to(torch.float32) * a_s[0, kb]
            part = torch.sum(b[tile_n, tile_k].to(torch.float32) * x[None, :], dim=1)
            acc = acc + part * b_s[nb, kb]
        ws[outer_k.id, 0, tile_n] = acc.to(ws.dtype)


def mm_config(m: int, n: int, k: int) -> dict[str, Any]:
    """Host key k_chunk + [BM, BN] (BK is the 128 scale block).

    M <= 64 (decode): the smallest row tile covering M (>= 16), BN halved from 128 (down to 32) until the grid has
    ~one program per SM, 4 warps, 5 stages (5 x (BM + BN) x 128 B of fp8 tiles in shared memory); M <= 128: 64 x 64
    with TMA fp8 tiles where that gives a program per SM, else 64 x 128, 4 warps, 4 stages.  Up to M = 128 no
    split-K once the tiles give a program per SM.  Larger M: SGLang's tuned H200 tile shape, 64 x 128 over 4 warps
    with 3 stages, 64 x 64 where 128-wide tiles would leave < 2 programs per SM (N = 576), grouped program order,
    and the two fp8 operand tiles as TMA loads (tensor descriptors; the scales stay pointer loads).  On the H200
    probe (ports/configs/h200/round3_w8a8.probe-20261204.txt, M = 2048) this beat the former 128 x 128 / 8-warp
    cp.async tile by 9-25 % at every shape tried (N = 4608 K = 7168: 229.7 -> 173.0 us; N = 576 K = 6144: 48.8
    (split-K 3) -> 36.4 us, no split); the TMA loads alone were worth 9-24 % on the 64-row tile.  Split-K
    (`split_block`) wherever the tiles cannot give 2 programs per SM (the MLA projections' N = 576 / 1536)."""
    sms = sm_count()
    if m <= 64:
        bm = pow2_at_most(64, m, floor=16)
        bn = fill_sms(pow2_at_most(128, n, floor=32), 32, lambda b: math.ceil(m / bm) * math.ceil(n / b), per_sm=1)
        cfg: dict[str, Any] = {"block_sizes": [bm, bn], "num_warps": 4, "num_stages": 5}
    elif m <= 128 and math.ceil(m / 64) * math.ceil(n / 64) >= sms:
        # 64 x 64 fills the SMs (N = 7168): TMA fp8 tiles, no split (M=128 N=7168 K=2304: 27.5 us with 64 x 128 and
        # split-K 3 -> 16.5, vLLM 20.3; ports/configs/h200/round4.probe-20261204.txt)
        bm, bn = 64, 64
        cfg = {"block_sizes": [bm, bn], "num_warps": 4, "num_stages": 4, "l2_groupings": [64],
               "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}
    elif m <= 128:
        bm, bn = 64, pow2_at_most(128, n, floor=32)
        cfg = {"block_sizes": [bm, bn], "num_warps": 4, "num_stages": 4, "l2_groupings": [8]}
    else:
        # never wider than 128: the per-step scale fold keeps the dot's result and the accumulator live together
        # (128 x 256 ran at 270 TFLOP/s, 128 x 128 at 580-640: results/h200/20261203T140413Z-all-e3e4d75e)
        bm, bn = 64, pow2_at_most(128, n, floor=32)
        if math.ceil(m / bm) * math.ceil(n / bn) < 2 * sms:
            bn = pow2_at_most(64, n, floor=32)
        cfg = {"block_sizes": [bm, bn], "num_warps": 4, "num_stages": 3, "l2_groupings": [32 if bn == 128 else 64],
               # a, b (the fp8 tiles) by TMA; a_s, b_s, ws by pointer
               "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}
    tiles = math.ceil(m / bm) * math.ceil(n / bn)
    # up to M = 128, one program per SM is enough: split-K's partials and second launch cost more than the second
    # program per SM gains (M=32 N=7168 K=1152: [32, 32] tiles with split-K 2 13.9 us, without 10.8, vLLM 12.9)
    chunk = k if m <= 128 and tiles >= sms else split_block(k, 128, tiles, m, n, 1.0, 1.0)
    return {"k_chunk": chunk, **cfg}


MV_STEPS = 8  # most 128-wide K steps one GEMV program runs in sequence


def mv_config(n: int, k: int) -> dict[str, Any]:
    """Host key k_chunk + [BN] for the M = 1 GEMV (BK = 128: 8-byte loads per lane, 16 lanes per weight row):
    16-row tiles (a 2 KB weight load per K step) and K cut into equal chunks of at most MV_STEPS scale blocks, so
    no program runs a long chain of dependent K steps (the fp32 partials, S x N x 4 bytes, are a few hundred KB at
    most).  A GEMV program is latency-bound, not bandwidth-bound: the former plan (tiles narrowed to 2-8 rows to
    fill the SMs, split-K only after that) ran 28-56 K steps a program and took 46-52 us for the MLA projections'
    4-14 MB of weights on the H200 (N = 576 K = 7168: 48.6 us vs vLLM 24.0, results/h200/20261204T154218Z-all-
    8ecc0452)."""
    units = math.ceil(k / 128)
    chunk = k if units <= MV_STEPS else 128 * math.ceil(units / math.ceil(units / MV_STEPS))
    return {"k_chunk": chunk, "block_sizes": [pow2_at_most(16, n, floor=1)], "num_warps": 4, "num_stages": 4}


class HelionW8A8BlockFp8Matmul(HelionPort):
    kernel: ClassVar[str] = "w8a8_block_fp8_matmul"
    dtypes: ClassVar[tuple[str, ...] | None] = (FP8,)
    host_keys: ClassVar[tuple[str, ...]] = ("k_chunk",)
    notes: ClassVar[tuple[str, ...]] = ("both block scales applied per 128-wide K step in the fp32 accumulator, "
                                        "bf16 cast in the epilogue; B read as [N, K] in place; split-K fp32 "
                                        "partials + sum only where tiles < 2 per SM",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        if dtype != FP8:
            raise ValueError(f"unknown dtype {dtype!r}")
        m, n, k = int(dims["M"]), int(dims["N"]), int(dims["K"])
        red = reduce_config(m, n)
        if m == 1:
            return {block_fp8_mv.name: mv_config(n, k), "sum_splits": red}
        return {block_fp8_mm.name: mm_config(m, n, k), "sum_splits": red}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        a, a_s, b, b_s = inputs["A"], inputs["As"], inputs["B"], inputs["Bs"]
        assert isinstance(out, torch.Tensor)
        m, k = a.shape
        n = b.shape[0]
        kb, nb = math.ceil(k / 128), math.ceil(n / 128)
        if b.shape[1] != k or tuple(a_s.shape) != (m, kb) or tuple(b_s.shape) != (nb, kb):
            raise ValueError(f"bad shapes A {tuple(a.shape)} As {tuple(a_s.shape)} B {tuple(b.shape)} "
                             f"Bs {tuple(b_s.shape)}")
        check_out(out, m, n)
        kern = block_fp8_mv if m == 1 else block_fp8_mm
        chunk = int(configs[kern.name]["k_chunk"])
        if chunk % 128 and chunk < k:
            raise ValueError(f"k_chunk {chunk} must be a multiple of the 128 scale block")
        return split_k_launches(kern, (a, a_s, b, b_s), out, k, chunk)


IMPL = HelionW8A8BlockFp8Matmul()

if __name__ == "__main__":
    check_main(IMPL)
