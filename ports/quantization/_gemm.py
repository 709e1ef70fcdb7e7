"""Shared host side of the quantized-GEMM ports (awq_gemm, triton_scaled_mm, w8a8_block_fp8_matmul): the split-K
choice, the prefill tile width, the split-K reduce kernel and its config, and the launch list.

Split-K (decode shapes whose output tiles cannot fill the SMs): the K range is cut into S chunks of `k_chunk`,
each GEMM program writes its fp32 partial to a [S, M, N] scratch and `sum_splits` adds them into C.  With S = 1
the GEMM writes C directly (its `ws` argument is C viewed as [1, M, N]); no second launch.
"""

from __future__ import annotations

import math
from typing import Any

import helion
import helion.language as hl
import torch

from ports._port import Launch, pow2_at_most, rows_block, sm_count


@helion.kernel(static_shapes=False)
def sum_splits(
    ws: torch.Tensor,  # [S, M, N] fp32 partials
    c: torch.Tensor,  # [M, N] fp16 / bf16, written
) -> None:
    hl.specialize(ws.size(0))
    M, N = c.size(0), c.size(1)
    for tile_m, tile_n in hl.tile([M, N]):
        c[tile_m, tile_n] = torch.sum(ws[:, tile_m, tile_n], dim=0).to(c.dtype)


def split_block(k: int, unit: int, tiles: int, m: int, n: int, w_bytes: float, a_bytes: float) -> int:
    """The K chunk of one program, a multiple of `unit`: K itself (no split) when the output tiles give >= 2
    programs per SM; else K cut into equal chunks for ~4 (decode, M <= 64) or ~2 programs per SM, with at most
    as many chunks as keep the fp32 partials (8 * M * N bytes per chunk, written and read back) within twice the
    operand stream (N * K * w_bytes + M * K * a_bytes), and no chunk shorter than 4 units."""
    sms = sm_count()
    if tiles >= 2 * sms:
        return k
    units = math.ceil(k / unit)
    cap = int(2 * (n * k * w_bytes + m * k * a_bytes) / (8 * m * n))
    splits = min(math.ceil((4 if m <= 64 else 2) * sms / tiles), cap, units // 4)
    if splits <= 1:
        return k
    return unit * math.ceil(units / splits)


def wave_block_n(m: int, n: int, sms: int, widest: int = 256) -> int:
    """BN of a 128-row prefill tile: the widest of 256 / 128 / 64 (at most `widest`) whose grid wastes < 25 % of
    its last wave (256 only with >= 2 waves: its tiles are the most efficient but the fewest); 128 if none does."""
    for bn in (b for b in (256, 128, 64) if b <= widest):
        tiles = math.ceil(m / 128) * math.ceil(n / bn)
        if bn == 256 and tiles < 2 * sms:
            continue
        if tiles / (math.ceil(tiles / sms) * sms) >= 0.75:
            return pow2_at_most(bn, n, floor=32)
    return pow2_at_most(128, n, floor=32)


def reduce_config(m: int, n: int) -> dict[str, Any]:
    """`sum_splits`: [<= 4 rows, <= 256 columns] tiles."""
    return {"block_sizes": [pow2_at_most(4, m, floor=1), pow2_at_most(256, n, floor=16)], "num_warps": 4}


def check_out(out: torch.Tensor, m: int, n: int) -> None:
    if tuple(out.shape) != (m, n):
        raise ValueError(f"out must be [M={m}, N={n}], got {tuple(out.shape)}")


def split_k_launches(kern: helion.Kernel, operands: tuple[object, ...], out: torch.Tensor, k: int, chunk: int,
                     *consts: object) -> list[Launch]:
    """`kern(*operands, ws, chunk, *consts)` writing C = out directly (one K chunk), or into fp32 [S, M, N]
    partials that `sum_splits` adds into out."""
    m, n = out.shape
    splits = math.ceil(k / chunk)
    if splits == 1:
        return [Launch(kern, (*operands, out[None], chunk, *consts))]
    ws = torch.empty(splits, m, n, dtype=torch.float32, device=out.device)
    return [Launch(kern, (*operands, ws, chunk, *consts)), Launch(sum_splits, (ws, out), adjust=rows_block(m))]
