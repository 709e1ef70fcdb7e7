"""Helion port of the EP-MoE token permutation (catalog row 82; SGLang 0.5.23 `deepep_permute_triton_kernel` via
`moe_permute`, kernels/ops/moe/ep_moe_kernels.py).

    out[src2dst[t * top_k + j], :] = x[t, :]        x [T, H] bf16, src2dst [T * top_k] int32 -> out [T*top_k, H]

One memory-bound pass: each [rows, columns] tile of x is read once and stored to its top_k destination rows
(unrolled over top_k), so x is read once and out written once: (1 + top_k) * T * H * 2 bytes.  Wide contiguous
column tiles (16-byte accesses), ~8K elements a program.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, elementwise_config, rows_block


@helion.kernel(static_shapes=False)
def moe_permute_kernel(
    x: torch.Tensor,  # [T, H] bf16
    src2dst: torch.Tensor,  # [T, top_k] int32 (view of [T * top_k])
    out: torch.Tensor,  # [T * top_k, H] bf16, written
) -> None:
    T, H = x.size(0), x.size(1)
    top_k = hl.specialize(src2dst.size(1))
    for tile_t, tile_h in hl.tile([T, H]):
        v = x[tile_t, tile_h]
        for j in hl.static_range(top_k):
            dst = src2dst[tile_t, j]
            hl.store(out, [dst, tile_h], v)


class HelionMoePermute(HelionPort):
    kernel: ClassVar[str] = "moe_permute"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: each x tile read once, stored to its top_k destination rows",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"moe_permute_kernel": elementwise_config(int(dims["T"]), int(dims["H"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, s2d = inputs["x"], inputs["src2dst"]
        t, h = x.shape
        k = s2d.numel() // max(t, 1)
        if s2d.numel() != t * k or tuple(out.shape) != (t * k, h):
            raise ValueError(f"bad shapes x {tuple(x.shape)} src2dst {tuple(s2d.shape)} out {tuple(out.shape)}")
        return [Launch(moe_permute_kernel, (x, s2d.view(t, k), out), adjust=rows_block(t))]


IMPL = HelionMoePermute()

if __name__ == "__main__":
    check_main(IMPL)
