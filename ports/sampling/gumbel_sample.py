"""Helion port of Gumbel-max sampling with counter-based noise (catalog row 102; vLLM v1 GPU worker
`_gumbel_sample_kernel` via `gumbel_sample`, sample/gumbel.py; apply_temperature=True, not drafting, fp32).

    u = murmur3_uniform32(seed_i, pos_t, v),  g = -log(-log1p(-u))  (vLLM's stable fp32 form)      i = mapping[t]
    out[t] = argmax_v (logits[t, v] / T_i + g)   (T_i != 0);   argmax_v logits[t, v]   (T_i = 0)   [B, V] -> [B] int64

One read of the logits, noise hashed in registers (32-bit murmur3 on int32 lanes: wrapping multiplies, logical
right shifts by masking), fp32 in the reference's operation order.  Rows are split into chunks so that
B * chunks fills the GPU at small B: launch 1 keeps a running (max, first index) per (row, chunk) and writes it
to [B, chunks] scratch; launch 2 picks, per row, the first chunk holding the row maximum (ties go to the lowest
token id, as torch.argmax).  The chunk is a host value baked into the kernel (hl.specialize).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, row_chunk, row_chunk_config, row_partials

# murmur3 constants as two's-complement int32 (the hash works on the bit patterns)
C1, C2, C3, C4, C5 = -862048943, 461845907, -430675100, -2048144789, -1028477387  # cc9e2d51 1b873593 e6546b64 ...


def _lsr(h: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int32 bit patterns."""
    return (h >> s) & ((1 << (32 - s)) - 1)


def _rotl(h: torch.Tensor, s: int) -> torch.Tensor:
    return (h << s) | _lsr(h, 32 - s)


def _mix(h: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    key = _rotl(key * C1, 15) * C2
    return _rotl(h ^ key, 13) * 5 + C3


@helion.kernel(static_shapes=False)
def gumbel_partial_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    mapping: torch.Tensor,  # [B] int32 request slot
    temperature: torch.Tensor,  # [MAX_NUM_REQS] fp32 (0 = greedy)
    seeds: torch.Tensor,  # [MAX_NUM_REQS] int64
    pos: torch.Tensor,  # [B] int64
    part_val: torch.Tensor,  # [B, C] fp32, written: chunk max score
    part_idx: torch.Tensor,  # [B, C] int32, written: first token id reaching it
    chunk: int,
) -> None:
    B, V = logits.size(0), logits.size(1)
    for tile_b, tile_c in hl.tile([B, V], block_size=[1, hl.specialize(chunk)]):
        slot = mapping[tile_b]
        t = temperature[slot]
        sampling = t != 0.0
        t = torch.where(sampling, t, torch.ones_like(t))[:, None]
        seed = seeds[slot]
        # hash state after (seed lo, seed hi, pos): per row
        h = _mix(torch.zeros_like(slot), seed.to(torch.int32))
        h = _mix(h, (seed >> 32).to(torch.int32))
        h = _mix(h, pos[tile_b].to(torch.int32))[:, None]
        best = hl.full([tile_b], float("-inf"), dtype=torch.float32)
        best_i = hl.zeros([tile_b], dtype=torch.int32)
        for tile_v in hl.tile(tile_c.begin, tile_c.end):
            cols = tile_v.index[None, :]
            r = _mix(h, cols) ^ 16
            r = (r ^ _lsr(r, 16)) * C4
            r = (r ^ _lsr(r, 13)) * C5
            r = r ^ _lsr(r, 16)
            u = _lsr(r, 16).to(torch.float32) * 1.52587890625e-05 + ((r & 0xFFFF).to(torch.float32) + 0.5) * \
                2.3283064365386963e-10
            poly = torch.full_like(u, 1.0 / 8.0)
            poly = 1.0 / 7.0 + u * poly
            poly = 1.0 / 6.0 + u * poly
            poly = 1.0 / 5.0 + u * poly
            poly = 1.0 / 4.0 + u * poly
            poly = 1.0 / 3.0 + u * poly
            poly = 1.0 / 2.0 + u * poly
            poly = 1.0 + u * poly
            direct = torch.log(torch.clamp(1.0 - u, min=5.960464477539063e-08))
            g = -torch.log(-torch.where(u < 0.25, -u * poly, direct))
            x = logits[tile_b, tile_v]
            score = torch.where(sampling[:, None], x / t + g, x)
            m = torch.amax(score, dim=1)
            first = torch.amin(torch.where(score == m[:, None], cols, torch.full_like(cols, 2**31 - 1)), dim=1)
            take = m > best
            best_i = torch.where(take, first, best_i)
            best = torch.where(take, m, best)
        part_val[tile_b, tile_c.id] = best
        part_idx[tile_b, tile_c.id] = best_i


@helion.kernel(static_shapes=False)
def gumbel_pick_kernel(
    part_val: torch.Tensor,  # [B, C] fp32
    part_idx: torch.Tensor,  # [B, C] int32
    out: torch.Tensor,  # [B] int64, written
) -> None:
    B = part_val.size(0)
    for tile_b in hl.tile(B, block_size=1):
        vals = part_val[tile_b, :]
        m = torch.amax(vals, dim=1)
        idx = part_idx[tile_b, :]
        first = torch.amin(torch.where(vals == m[:, None], idx, torch.full_like(idx, 2**31 - 1)), dim=1)
        out[tile_b] = first.to(torch.int64)


class HelionGumbelSample(HelionPort):
    kernel: ClassVar[str] = "gumbel_sample"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp32",)
    notes: ClassVar[tuple[str, ...]] = ("one read of the logits: hashed noise in registers, split-row running argmax "
                                        "(scratch [B, chunks]), then a per-row pick of the first maximum",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        # ~40 integer / fp ops per element: 2048-column inner tiles keep the hash temporaries in registers
        return {"gumbel_partial_kernel": row_chunk_config(int(dims["B"]), int(dims["V"]), 2048),
                "gumbel_pick_kernel": {"block_sizes": [], "num_warps": 1}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        logits = inputs["logits"]
        b, v = logits.shape
        chunk = row_chunk(b, v)
        pval, pidx = row_partials(logits, chunk, torch.float32, torch.int32)
        args = (logits, inputs["mapping"], inputs["temperature"], inputs["seeds"], inputs["pos"], pval, pidx, chunk)
        return [Launch(gumbel_partial_kernel, args), Launch(gumbel_pick_kernel, (pval, pidx, out))]


IMPL = HelionGumbelSample()

if __name__ == "__main__":
    check_main(IMPL)
