"""Merge a second attention state into the first, in place, under a token mask (catalog row 16, FlashInfer
`merge_state_in_place_kernel`).

Math, per token t and head h, natural-log LSEs:

    mask[t]:      v[t, h] <- exp(lse[t, h] - l) * v[t, h] + exp(lse_o[t, h] - l) * v_o[t, h],
                  l = log(exp(lse[t, h]) + exp(lse_o[t, h]))   (lse is updated to l too)
    not mask[t]:  v[t, h] unchanged

Shapes: v, v_other [T, H, D] (bf16/fp16); lse, lse_other [T, H] fp32; mask [T] bool (about 3/4 set, so the
skip path is exercised).  The checked output is the updated v.  An in-place kernel consumes its input: the
impl restores v (and lse) from the pristine inputs at the start of each call, and that copy is timed
(the impl's notes say so); bytes() counts only the kernel's own traffic.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.attention._common import (
    merge_reference,
    merge_tolerance,
    merged_heads,
    random_states,
    token_cases,
    torch_dtype,
)


class MergeStateInPlaceSpec(KernelSpec):
    id = "merge_state_in_place"
    category = "attention"
    catalog_rows = (16,)
    token_dim = 'T'
    title = "Merge an attention state into another in place, under a token mask"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_cases(model, merged_heads(model), quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 9, "H": 3, "D": 40}), Case("test", "test", {"T": 4, "H": 2, "D": 8})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "H": 8, "D": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        v, s = random_states(p["T"], p["H"], p["D"], g, device)
        vo, so = random_states(p["T"], p["H"], p["D"], g, device)
        mask = torch.rand(p["T"], generator=g, device=device) < 0.75
        mask[0] = True  # at least one merged token, even at T=1
        return {"v": v.to(dt), "lse": s, "v_other": vo.to(dt), "lse_other": so, "mask": mask}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["v"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        merged = merge_reference([inputs["v"], inputs["v_other"]], [inputs["lse"], inputs["lse_other"]])
        return torch.where(inputs["mask"][:, None, None], merged, inputs["v"].float())

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*merge_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        return 3.0 * p["T"] * p["H"] * p["D"] + 5.0 * p["T"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        # v, v_other read and v written; lse, lse_other read; mask (the in-place LSE update is not a checked
        # output, so it is not counted)
        return 3.0 * p["T"] * p["H"] * p["D"] * elt + 2.0 * p["T"] * p["H"] * 4 + p["T"]


SPEC = MergeStateInPlaceSpec()
