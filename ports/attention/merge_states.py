"""Helion port of the S-way attention-state merge (catalog row 17, FlashInfer `merge_states_kernel` via
`flashinfer.triton.cascade.merge_states`).

    lse = logsumexp_i lse[t, i, h];   out[t, h] = sum_i exp(lse[t, i, h] - lse) * v[t, i, h]
    v [T, S, H, D] bf16/fp16, lse [T, S, H] fp32 (natural log) -> out [T, H, D]

One pass, memory-bound ((S + 1) * T * H * D * elt + 4 * S * T * H bytes).  A program owns a [tokens, heads, D]
tile and loads all S states of it at once (S is a compile-time dim): the S weights per (t, h) are a max-shifted
softmax of the LSEs in fp32, the S rows are combined in fp32 and rounded once.  The merged LSE is not written
(the spec checks only out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most


@helion.kernel(static_shapes=False)
def merge_states_kernel(
    v: torch.Tensor,  # [T, S, H, D] bf16/fp16
    lse: torch.Tensor,  # [T, S, H] fp32
    out: torch.Tensor,  # [T, H, D], written
) -> None:
    T, H, D = out.size(0), out.size(1), out.size(2)
    hl.specialize(v.size(1))  # S: the state axis is loaded whole
    for tile_t, tile_h, tile_d in hl.tile([T, H, D]):
        s = lse[tile_t, :, tile_h]  # [bt, S, bh]
        m = torch.amax(s, dim=1)  # [bt, bh]
        w = torch.exp(s - m[:, None, :])
        w = w / torch.sum(w, dim=1)[:, None, :]
        x = v[tile_t, :, tile_h, tile_d].to(torch.float32)  # [bt, S, bh, bd]
        out[tile_t, tile_h, tile_d] = torch.sum(x * w[:, :, :, None], dim=1).to(out.dtype)


def merge_config(t: int, s: int, h: int, d: int, target: int = 8192) -> dict[str, Any]:
    """[tokens, heads, D] tiles: whole (pow2) head dim, heads next, then tokens, ~`target` loaded elements
    (all S states) per program; fewer tokens per tile when the grid would leave SMs idle."""
    sp = pow2_at_most(64, s)
    bd = pow2_at_most(256, d, floor=16)
    bh = pow2_at_most(max(1, target // (sp * bd)), h)
    bt = pow2_at_most(max(1, target // (sp * bd * bh)), t)
    while bt > 1 and -(-t // bt) * -(-h // bh) < 2 * 132:
        bt //= 2
    while bh > 1 and -(-t // bt) * -(-h // bh) < 2 * 132:
        bh //= 2
    return {"block_sizes": [bt, bh, bd], "num_warps": 4 if bt * bh * bd * sp <= 4096 else 8}


class HelionMergeStates(HelionPort):
    kernel: ClassVar[str] = "merge_states"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    notes: ClassVar[tuple[str, ...]] = ("one pass: all S states of a [t, h, D] tile loaded at once, fp32 softmax "
                                        "weights of the LSEs and fp32 combine, one rounding",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"merge_states_kernel": merge_config(int(dims["T"]), int(dims["S"]), int(dims["H"]), int(dims["D"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        return [Launch(merge_states_kernel, (inputs["v"], inputs["lse"], out))]


IMPL = HelionMergeStates()

if __name__ == "__main__":
    check_main(IMPL)
