"""Helion port of the masked in-place attention-state merge (catalog row 16, FlashInfer
`merge_state_in_place_kernel` via `flashinfer.triton.cascade.merge_state_in_place`).

    mask[t]:  v[t, h] <- exp(lse - l) * v + exp(lse_o - l) * v_o,  lse[t, h] <- l = logaddexp(lse, lse_o)
    else:     unchanged
    v, v_other [T, H, D] bf16/fp16; lse, lse_other [T, H] fp32 (natural log); mask [T] bool -> v' [T, H, D]

The bench output is a separate buffer, so the port reads the pristine v and writes v' (out-of-place): no restore
copy is needed (the upstream adapter times two copies before its in-place kernel).  One pass over a [T * H, D]
row view: masked-off rows skip the v_other / lse_other loads and copy v through (the bool mask is read as a
zero-copy uint8 view); the merged LSE goes to a
scratch [T * H] buffer (the op's second result, not compared by the spec).  Memory-bound:
~(2 + 3/4) * T * H * D * elt + 12 * T * H bytes.
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
def merge_state_in_place_kernel(
    v: torch.Tensor,  # [R, D] (R = T * H) bf16/fp16, the state merged into
    lse: torch.Tensor,  # [R] fp32
    v_other: torch.Tensor,  # [R, D]
    lse_other: torch.Tensor,  # [R] fp32
    mask: torch.Tensor,  # [T] uint8 (a view of the bool mask)
    heads: int,  # H: row r belongs to token r // H
    out: torch.Tensor,  # [R, D] the updated v, written
    lse_out: torch.Tensor,  # [R] fp32 the updated lse, written
) -> None:
    R, D = out.size(0), out.size(1)
    for tile_r, tile_d in hl.tile([R, D]):
        on = hl.load(mask, [tile_r.index // heads]) != 0  # [br]
        s = lse[tile_r]
        so = hl.load(lse_other, [tile_r], extra_mask=on)
        so = torch.where(on, so, float("-inf"))
        m = torch.maximum(s, so)
        e = torch.exp(s - m)
        eo = torch.exp(so - m)
        inv = 1.0 / (e + eo)
        x = v[tile_r, tile_d].to(torch.float32)
        xo = hl.load(v_other, [tile_r, tile_d], extra_mask=on[:, None]).to(torch.float32)
        merged = x * (e * inv)[:, None] + xo * (eo * inv)[:, None]
        out[tile_r, tile_d] = torch.where(on[:, None], merged, x).to(out.dtype)
        if tile_d.begin == 0:
            lse_out[tile_r] = torch.where(on, m + torch.log(e + eo), s)


def rows_config(rows: int, cols: int, target: int = 4096) -> dict[str, Any]:
    """[rows, D] tiles: the whole (pow2-padded) head dim per tile (contiguous, 16-byte vectors), ~`target`
    elements per program, fewer rows when the grid would leave SMs idle."""
    bd = pow2_at_most(256, cols, floor=16)
    br = pow2_at_most(max(1, target // bd), rows)
    while br > 1 and -(-rows // br) < 2 * 132:
        br //= 2
    return {"block_sizes": [br, bd], "num_warps": 4 if br * bd <= 2048 else 8}


class HelionMergeStateInPlace(HelionPort):
    kernel: ClassVar[str] = "merge_state_in_place"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    notes: ClassVar[tuple[str, ...]] = (
        "out-of-place into the bench buffer (reads pristine v, no restore copies); one pass over [T*H, D] rows, "
        "masked rows skip v_other loads; merged LSE written to a scratch buffer",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"merge_state_in_place_kernel": rows_config(int(dims["T"]) * int(dims["H"]), int(dims["D"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        t, h, d = out.shape
        for k in ("v", "lse", "v_other", "lse_other"):
            if not inputs[k].is_contiguous():
                raise ValueError(f"merge_state_in_place: {k} must be contiguous")
        lse_out = torch.empty(t * h, dtype=torch.float32, device=out.device)
        args = (inputs["v"].view(t * h, d), inputs["lse"].view(t * h), inputs["v_other"].view(t * h, d),
                inputs["lse_other"].view(t * h), inputs["mask"].view(torch.uint8), h, out.view(t * h, d), lse_out)
        return [Launch(merge_state_in_place_kernel, args)]


IMPL = HelionMergeStateInPlace()

if __name__ == "__main__":
    check_main(IMPL)
