"""Helion port of the EP-MoE unpermute + weighted top-k reduce (catalog rows 47 and 46; vLLM 0.33.0
`_fwd_kernel_ep_gather` via `ep_gather`, fused_moe/deep_gemm_utils.py; SGLang 0.5.23
`deepep_post_reorder_triton_kernel` via `moe_unpermute`).

    out[t, :] = sum_{j: expert_map[ids[t, j]] >= 0} w[t, j] * a[inv_perm[t, j], :]
    a [T*top_k, H] bf16; ids, inv_perm [T, top_k] int32; w [T, top_k] fp32; expert_map [E] int32 -> out [T, H] bf16

One memory-bound pass: per [rows, columns] tile, the top_k slots are unrolled; each slot's expert is looked up in
expert_map in the kernel and rows of remote experts are masked out of the load (they are never read: with EP over
2 ranks half the rows of `a` stay untouched), fp32 accumulation, one bf16 rounding.  Wide column tiles (16-byte
gathers of whole row segments), ~8K output elements a program.
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
def ep_gather_kernel(
    a: torch.Tensor,  # [R, H] bf16 expert-sorted rows
    topk_ids: torch.Tensor,  # [T, top_k] int32
    topk_weights: torch.Tensor,  # [T, top_k] fp32
    inv_perm: torch.Tensor,  # [T, top_k] int32
    expert_map: torch.Tensor,  # [E] int32, -1 = remote
    out: torch.Tensor,  # [T, H] bf16, written
) -> None:
    T, H = out.size(0), out.size(1)
    top_k = hl.specialize(topk_ids.size(1))
    for tile_t, tile_h in hl.tile([T, H]):
        acc = hl.zeros([tile_t, tile_h], dtype=torch.float32)
        for j in hl.static_range(top_k):
            e = topk_ids[tile_t, j]
            local = hl.load(expert_map, [e]) >= 0
            row = inv_perm[tile_t, j]
            w = topk_weights[tile_t, j]
            v = hl.load(a, [row, tile_h], extra_mask=local[:, None])
            acc = acc + v.to(torch.float32) * torch.where(local, w, 0.0)[:, None]
        out[tile_t, tile_h] = acc.to(out.dtype)


class HelionEpGather(HelionPort):
    kernel: ClassVar[str] = "ep_gather"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: expert_map lookup in the kernel, remote slots never read, "
                                        "fp32 top-k accumulation, one rounding",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"ep_gather_kernel": elementwise_config(int(dims["T"]), int(dims["H"]), target=4096)}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        a, ids, w, inv = inputs["a"], inputs["topk_ids"], inputs["topk_weights"], inputs["inv_perm"]
        t = ids.shape[0]
        if ids.shape != w.shape or ids.shape != inv.shape or tuple(out.shape) != (t, a.shape[1]):
            raise ValueError(f"bad shapes a {tuple(a.shape)} ids {tuple(ids.shape)} out {tuple(out.shape)}")
        return [Launch(ep_gather_kernel, (a, ids, w, inv, inputs["expert_map"], out), adjust=rows_block(t))]


IMPL = HelionEpGather()

if __name__ == "__main__":
    check_main(IMPL)
