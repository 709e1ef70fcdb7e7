"""Helion port of min-p filtering (catalog row 51; vLLM v1 GPU worker `_min_p_kernel` via `apply_min_p`,
sample/min_p.py).

    thr[t] = max_v logits[t, v] + log(min_p_i),  i = mapping[t]                      [B, V] fp32 -> [B, V] fp32
    out[t, v] = logits[t, v] if min_p_i == 0 or logits[t, v] >= thr[t] else FILTERED (-1e4, the spec's contract)

Fusion: the upstream call is copy + in-place kernel (row max pass, filter pass) + clamp of -inf to FILTERED (7
passes of B*V*4 bytes); here two launches read the logits twice and write the output once (3 passes), the
FILTERED value written directly.  Rows are split into chunks so that B * chunks fills the GPU at small B:
launch 1 writes one partial max per (row, chunk) to a [B, chunks] scratch, launch 2 (same chunk grid) reduces
the row's partials, forms the threshold and filters its chunk.  The chunk is a host value baked into both
kernels (hl.specialize), so tuning can only change the inner streaming block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from harness.specs.sampling.min_p import FILTERED
from ports._port import Configs, HelionPort, Launch, check_main, row_chunk, row_chunk_config, row_partials


@helion.kernel(static_shapes=False)
def min_p_rowmax_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    partial: torch.Tensor,  # [B, C] fp32 scratch, C = cdiv(V, chunk): max of each chunk, written
    chunk: int,
) -> None:
    B, V = logits.size(0), logits.size(1)
    for tile_b, tile_c in hl.tile([B, V], block_size=[1, hl.specialize(chunk)]):
        m = hl.full([tile_b], float("-inf"), dtype=torch.float32)
        for tile_v in hl.tile(tile_c.begin, tile_c.end):
            m = torch.maximum(m, torch.amax(logits[tile_b, tile_v], dim=1))
        partial[tile_b, tile_c.id] = m


@helion.kernel(static_shapes=False)
def min_p_filter_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    partial: torch.Tensor,  # [B, C] fp32 chunk maxima from min_p_rowmax_kernel
    mapping: torch.Tensor,  # [B] int32 request slot of each row
    min_p: torch.Tensor,  # [MAX_NUM_REQS] fp32 (0 = off)
    out: torch.Tensor,  # [B, V] fp32, written
    chunk: int,
) -> None:
    B, V = logits.size(0), logits.size(1)
    for tile_b, tile_c in hl.tile([B, V], block_size=[1, hl.specialize(chunk)]):
        row_max = torch.amax(partial[tile_b, :], dim=1)  # [tile_b]
        mp = min_p[mapping[tile_b]]
        on = mp > 0.0
        thr = row_max + torch.log(torch.where(on, mp, torch.ones_like(mp)))
        thr = torch.where(on, thr, torch.full_like(thr, float("-inf")))
        for tile_v in hl.tile(tile_c.begin, tile_c.end):
            x = logits[tile_b, tile_v]
            out[tile_b, tile_v] = torch.where(x >= thr[:, None], x, torch.full_like(x, FILTERED))


class HelionMinP(HelionPort):
    kernel: ClassVar[str] = "min_p"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp32",)
    notes: ClassVar[tuple[str, ...]] = ("2 reads + 1 write: split-row max (scratch [B, chunks]), then threshold + "
                                        "filter into out with FILTERED written directly (no copy, no clamp)",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cfg = row_chunk_config(int(dims["B"]), int(dims["V"]), 4096)
        return {"min_p_rowmax_kernel": dict(cfg), "min_p_filter_kernel": dict(cfg)}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        logits = inputs["logits"]
        b, v = logits.shape
        chunk = row_chunk(b, v)
        (partial,) = row_partials(logits, chunk, torch.float32)
        return [Launch(min_p_rowmax_kernel, (logits, partial, chunk)),
                Launch(min_p_filter_kernel, (logits, partial, inputs["mapping"], inputs["min_p"], out, chunk))]


IMPL = HelionMinP()

if __name__ == "__main__":
    check_main(IMPL)
