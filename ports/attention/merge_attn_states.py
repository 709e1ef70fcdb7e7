"""Helion port of the two-state attention merge (catalog rows 18 vLLM `merge_attn_states_kernel`, 15 FlashInfer
`merge_state_kernel`; SGLang `merge_state_triton` computes the same).

    lse = logaddexp(lse_a, lse_b);  out = exp(lse_a - lse) * v_a + exp(lse_b - lse) * v_b
    v_a, v_b [T, H, D] bf16/fp16, lse_a, lse_b [T, H] fp32 (natural log) -> out [T, H, D]

One pass, memory-bound (3 * T * H * D * elt + 8 * T * H bytes).  (token, head) pairs are flattened into rows of
a [T * H, D] view (no copy), so the grid fills the GPU at any T; per row the two weights are computed once in
fp32 (max-shifted, one exp each, one division) and the row is combined in fp32 and rounded once.  The merged
LSE is not written (vLLM's decode-context call passes output_lse=None; the spec checks only out).  An +inf LSE
(vLLM's marker for an empty state) is treated as -inf, as vLLM does.
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
def merge_attn_states_kernel(
    v_a: torch.Tensor,  # [R, D] (R = T * H) bf16/fp16
    lse_a: torch.Tensor,  # [R] fp32
    v_b: torch.Tensor,  # [R, D]
    lse_b: torch.Tensor,  # [R] fp32
    out: torch.Tensor,  # [R, D], written
) -> None:
    R, D = out.size(0), out.size(1)
    for tile_r, tile_d in hl.tile([R, D]):
        sa = lse_a[tile_r]
        sb = lse_b[tile_r]
        sa = torch.where(sa == float("inf"), float("-inf"), sa)
        sb = torch.where(sb == float("inf"), float("-inf"), sb)
        m = torch.maximum(sa, sb)
        ea = torch.exp(sa - m)
        eb = torch.exp(sb - m)
        inv = 1.0 / (ea + eb)
        wa = (ea * inv)[:, None]
        wb = (eb * inv)[:, None]
        acc = v_a[tile_r, tile_d].to(torch.float32) * wa + v_b[tile_r, tile_d].to(torch.float32) * wb
        out[tile_r, tile_d] = acc.to(out.dtype)


def rows_config(rows: int, cols: int, target: int = 4096) -> dict[str, Any]:
    """[rows, D] tiles: the whole (pow2-padded) head dim per tile (contiguous, 16-byte vectors), ~`target`
    elements per program (8 KB of each bf16 input), fewer rows when the grid would leave SMs idle."""
    bd = pow2_at_most(256, cols, floor=16)
    br = pow2_at_most(max(1, target // bd), rows)
    while br > 1 and -(-rows // br) < 2 * 132:  # small T: more, smaller programs
        br //= 2
    return {"block_sizes": [br, bd], "num_warps": 4 if br * bd <= 2048 else 8}


class HelionMergeAttnStates(HelionPort):
    kernel: ClassVar[str] = "merge_attn_states"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    notes: ClassVar[tuple[str, ...]] = ("one pass over [T*H, D] rows: per-row fp32 weights, fp32 combine, one "
                                        "rounding; merged LSE not written (as vLLM's output_lse=None call)",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"merge_attn_states_kernel": rows_config(int(dims["T"]) * int(dims["H"]), int(dims["D"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        t, h, d = out.shape
        va, vb = inputs["v_a"].reshape(t * h, d), inputs["v_b"].reshape(t * h, d)
        sa, sb = inputs["lse_a"].reshape(t * h), inputs["lse_b"].reshape(t * h)
        for x in (va, vb, sa, sb):
            if x.data_ptr() not in (inputs[k].data_ptr() for k in ("v_a", "v_b", "lse_a", "lse_b")):
                raise ValueError("merge_attn_states: inputs must be contiguous (views, not copies)")
        return [Launch(merge_attn_states_kernel, (va, sa, vb, sb, out.view(t * h, d)))]


IMPL = HelionMergeAttnStates()

if __name__ == "__main__":
    check_main(IMPL)
