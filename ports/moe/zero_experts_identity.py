"""Helion port of the zero-expert identity contribution (catalog row 45; vLLM 0.33.0 `compute_identity_kernel` via
`zero_experts_compute_triton`, fused_moe/fused_moe.py).

    out[t, :] = (sum_{j: ids[t, j] >= E} w[t, j]) * x[t, :]      x [T, H] bf16, ids/w [T, top_k] -> out [T, H] bf16

One memory-bound pass (4 bytes per element): each [rows, columns] tile reduces its rows' top-k router weights of
zero experts in fp32 (a [rows, top_k] load, negligible next to the row data) and scales the row tile once, one
rounding to bf16.  Tiles as silu_and_mul's: wide contiguous columns (16-byte accesses), ~8K elements a program.
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
def zero_experts_identity_kernel(
    x: torch.Tensor,  # [T, H] bf16
    topk_ids: torch.Tensor,  # [T, top_k] int32
    topk_weights: torch.Tensor,  # [T, top_k] fp32
    out: torch.Tensor,  # [T, H] bf16, written
    num_experts: int,  # E: ids >= E are zero (identity) experts
) -> None:
    T, H = out.size(0), out.size(1)
    hl.specialize(topk_ids.size(1))
    for tile_t, tile_h in hl.tile([T, H]):
        ids = topk_ids[tile_t, :]
        w = topk_weights[tile_t, :]
        zw = torch.sum(torch.where(ids >= num_experts, w, 0.0), dim=1)
        out[tile_t, tile_h] = (x[tile_t, tile_h].to(torch.float32) * zw[:, None]).to(out.dtype)


class HelionZeroExpertsIdentity(HelionPort):
    kernel: ClassVar[str] = "zero_experts_identity"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: zero-expert weight sum per row tile in fp32, scaled copy, "
                                        "one rounding",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"zero_experts_identity_kernel": elementwise_config(int(dims["T"]), int(dims["H"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, ids, w = inputs["hidden_states"], inputs["topk_ids"], inputs["topk_weights"]
        if ids.shape != w.shape or ids.shape[0] != x.shape[0] or out.shape != x.shape:
            raise ValueError(f"bad shapes x {tuple(x.shape)} ids {tuple(ids.shape)} w {tuple(w.shape)}")
        return [Launch(zero_experts_identity_kernel, (x, ids, w, out, int(case.params["E"])),
                       adjust=rows_block(x.shape[0]))]


IMPL = HelionZeroExpertsIdentity()

if __name__ == "__main__":
    check_main(IMPL)
