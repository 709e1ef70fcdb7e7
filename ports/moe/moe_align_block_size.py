"""Helion port of the MoE routing alignment (catalog row 44; SGLang 0.5.23 `moe_align_block_size_triton`, the
four-stage Triton reference of its CUDA op; vLLM's `moe_align_block_size` computes the same layout).

    topk_ids [M, top_k] int32 -> one int32 buffer: sorted_token_ids [P] (slots sorted by expert, stable, each
    expert's run padded to a multiple of B with M*top_k), expert_ids [ceil(P/B)] (-1 past the last block),
    num_tokens_post_pad [1];  P = M*top_k + E*(B-1)

Five small launches, all integer work on the [N = M*top_k] slot list, no atomics, deterministic:

1. `align_count`   grid: chunks of C slots.  cnt[c, e] = #slots of expert e in chunk c (one-hot, summed).
2. `align_scan`    grid: expert tiles.  offs[c, e] = exclusive prefix of cnt over chunks; tot[e] = total.
3. `align_blocks`  grid: block tiles.  Every program derives the padded per-expert starts from tot (a cumsum over
                   the E experts, in registers) and writes expert_ids of its blocks (an expert's blocks are those
                   whose start lies in its padded run) and the pad count; all write the same `pstart` (benign).
4. `align_fill`    sorted_token_ids[:] = M*top_k.
5. `align_place`   grid: chunks.  A slot's rank among earlier same-expert slots of its chunk is a [C, C]
                   comparison; dest = pstart[e] + offs[c, e] + rank, so the layout is the stable sort.

Memory traffic is a few bytes per slot; at decode sizes the call is launch-latency bound (5 tiny launches).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from harness.specs.moe.moe_align_block_size import split_output
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most


@helion.kernel(static_shapes=False)
def align_count(
    ids: torch.Tensor,  # [N] int32 expert of each slot
    cnt: torch.Tensor,  # [nch, E] int32, written
    chunk: hl.constexpr,
) -> None:
    N = ids.size(0)
    E = hl.specialize(cnt.size(1))
    for tile_c in hl.tile(N, block_size=chunk):
        valid = tile_c.index < N
        v = torch.where(valid, ids[tile_c], -1)
        for tile_e in hl.tile(E):
            hit = v[:, None] == tile_e.index[None, :]
            cnt[tile_c.id, tile_e] = torch.sum(hit.to(torch.int32), dim=0)


@helion.kernel(static_shapes=False)
def align_scan(
    cnt: torch.Tensor,  # [nch, E] int32
    offs: torch.Tensor,  # [nch, E] int32, written: slots of expert e in chunks before c
    tot: torch.Tensor,  # [E] int32, written
) -> None:
    nch = cnt.size(0)
    E = hl.specialize(cnt.size(1))
    for tile_e in hl.tile(E):
        run = hl.zeros([tile_e], dtype=torch.int32)
        for tile_p in hl.tile(nch):
            c = cnt[tile_p, tile_e]
            cs = torch.cumsum(c, dim=0)
            offs[tile_p, tile_e] = cs - c + run[None, :]
            run = run + torch.sum(c, dim=0).to(torch.int32)
        tot[tile_e] = run


@helion.kernel(static_shapes=False)
def align_blocks(
    tot: torch.Tensor,  # [E] int32
    expert_ids: torch.Tensor,  # [NB] int32, written
    ntp: torch.Tensor,  # [1] int32, written
    pstart: torch.Tensor,  # [E] int32, written: padded start of each expert's run
    block: hl.constexpr,
    e_pow2: hl.constexpr,
) -> None:
    E = hl.specialize(tot.size(0))
    NB = expert_ids.size(0)
    for tile_b in hl.tile(NB):
        start = tile_b.index * block
        for tile_e in hl.tile(E, block_size=e_pow2):
            t = tot[tile_e]
            padded = (t + (block - 1)) // block * block
            pend = torch.cumsum(padded, dim=0)
            total = torch.sum(padded, dim=0)
            before = (pend[None, :] <= start[:, None]).to(torch.int32)
            e_of = torch.sum(before, dim=1)
            expert_ids[tile_b] = torch.where(start < total, e_of, -1)
            pstart[tile_e] = pend - padded
            hl.store(ntp, [tile_b.index * 0], total + tile_b.index * 0)


@helion.kernel(static_shapes=False)
def align_fill(
    sorted_ids: torch.Tensor,  # [P] int32, written
    pad: int,
) -> None:
    for tile in hl.tile(sorted_ids.size(0)):
        sorted_ids[tile] = hl.full([tile], pad, dtype=torch.int32)


@helion.kernel(static_shapes=False)
def align_place(
    ids: torch.Tensor,  # [N] int32
    offs: torch.Tensor,  # [nch * E] int32 (flat)
    pstart: torch.Tensor,  # [E] int32
    sorted_ids: torch.Tensor,  # [P] int32, written at the real slots
    chunk: hl.constexpr,
) -> None:
    N = ids.size(0)
    E = hl.specialize(pstart.size(0))
    for tile_c in hl.tile(N, block_size=chunk):
        valid = tile_c.index < N
        v = torch.where(valid, ids[tile_c], 0)
        earlier = tile_c.index[None, :] < tile_c.index[:, None]
        same = (v[:, None] == v[None, :]) & earlier
        rank = torch.sum(same.to(torch.int32), dim=1)
        base = hl.load(pstart, [v], extra_mask=valid) + hl.load(offs, [tile_c.id * E + v], extra_mask=valid)
        hl.store(sorted_ids, [base + rank], tile_c.index, extra_mask=valid)


def chunk_of(n: int) -> int:
    """Slots per chunk: 64 (a [64, 64] rank comparison per program), fewer for tiny batches."""
    return pow2_at_most(64, n, floor=16)


class HelionMoeAlignBlockSize(HelionPort):
    kernel: ClassVar[str] = "moe_align_block_size"
    dtypes: ClassVar[tuple[str, ...] | None] = ("int32",)
    notes: ClassVar[tuple[str, ...]] = ("5 launches: chunk counts, per-expert chunk scan, block experts, pad fill, "
                                        "stable placement by in-chunk rank (no atomics)",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        m, e, k, b = int(dims["M"]), int(dims["E"]), int(dims["top_k"]), int(dims["B"])
        n = m * k
        nch = (n + chunk_of(n) - 1) // chunk_of(n)
        p = n + e * (b - 1)
        nb = (p + b - 1) // b
        ep = pow2_at_most(1 << 16, e)
        return {
            "align_count": {"block_sizes": [pow2_at_most(64, e, floor=16)], "num_warps": 4},
            "align_scan": {"block_sizes": [pow2_at_most(32, e, floor=16), pow2_at_most(32, nch, floor=1)],
                           "num_warps": 4},
            "align_blocks": {"block_sizes": [pow2_at_most(max(1, 4096 // ep), nb, floor=1)], "num_warps": 4},
            "align_fill": {"block_sizes": [pow2_at_most(1024, p, floor=16)], "num_warps": 4},
            "align_place": {"block_sizes": [], "num_warps": 4},
        }

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        p_ = case.params
        m, k, e, b = int(p_["M"]), int(p_["top_k"]), int(p_["E"]), int(p_["B"])
        ids = inputs["topk_ids"]
        if tuple(ids.shape) != (m, k):
            raise ValueError(f"topk_ids must be [M={m}, top_k={k}], got {tuple(ids.shape)}")
        n = m * k
        chunk = chunk_of(n)
        nch = (n + chunk - 1) // chunk
        dev = ids.device
        flat = ids.reshape(n)
        sorted_ids, expert_ids, ntp = split_output(out, m, k, e, b)
        cnt = torch.empty(nch, e, dtype=torch.int32, device=dev)
        offs = torch.empty(nch, e, dtype=torch.int32, device=dev)
        tot = torch.empty(e, dtype=torch.int32, device=dev)
        pstart = torch.empty(e, dtype=torch.int32, device=dev)
        return [
            Launch(align_count, (flat, cnt, chunk)),
            Launch(align_scan, (cnt, offs, tot)),
            Launch(align_blocks, (tot, expert_ids, ntp, pstart, b, pow2_at_most(1 << 16, e))),
            Launch(align_fill, (sorted_ids, n)),
            Launch(align_place, (flat, offs.view(-1), pstart, sorted_ids, chunk)),
        ]


IMPL = HelionMoeAlignBlockSize()

if __name__ == "__main__":
    check_main(IMPL)
