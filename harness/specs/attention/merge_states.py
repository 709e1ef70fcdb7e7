"""Merge S partial attention states at once (catalog row 17, FlashInfer `merge_states_kernel`).

Math, per token t and head h, natural-log LSEs:

    lse = logsumexp_i lse[t, i, h];   out[t, h] = sum_i exp(lse[t, i, h] - lse) * v[t, i, h]

Shapes: v [T, S, H, D] (bf16/fp16); lse [T, S, H] fp32; out [T, H, D].  S is the number of KV splits / index
sets merged (cascade levels or split-KV chunks): 2, 4 and 8 are benchmarked.
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

NUM_STATES = (2, 4, 8)


class MergeStatesSpec(KernelSpec):
    id = "merge_states"
    category = "attention"
    catalog_rows = (17,)
    token_dim = 'T'
    title = "Merge S partial attention outputs by their log-sum-exps"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = merged_heads(model)
        out = []
        for s in (NUM_STATES[1],) if quick else NUM_STATES:
            out += token_cases(model, heads, quick, {"S": s})
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 5, "H": 3, "D": 24, "S": 3}),
                Case("test", "test", {"T": 2, "H": 1, "D": 8, "S": 1})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 19, "H": 8, "D": 128, "S": 4})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        v, lse = random_states(p["T"] * p["S"], p["H"], p["D"], g, device)
        return {"v": v.view(p["T"], p["S"], p["H"], p["D"]).to(dt),
                "lse": lse.view(p["T"], p["S"], p["H"]).contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        v = inputs["v"]
        return torch.empty(v.shape[0], v.shape[2], v.shape[3], dtype=v.dtype, device=v.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        v, lse = inputs["v"], inputs["lse"]
        s = v.shape[1]
        return merge_reference([v[:, i] for i in range(s)], [lse[:, i] for i in range(s)])

    def tolerance(self, dtype: str) -> Tolerance:
        rel, src = merge_tolerance(dtype)
        return Tolerance(rel, src + " (S-term fp32 combine)")

    def flops(self, case: Case) -> float:
        p = case.params
        # per state and element: a rescale of the running sum and an fma; per state and (t, h): max, 2 exps
        return p["S"] * (3.0 * p["T"] * p["H"] * p["D"] + 4.0 * p["T"] * p["H"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        return (p["S"] + 1.0) * p["T"] * p["H"] * p["D"] * elt + p["S"] * p["T"] * p["H"] * 4


SPEC = MergeStatesSpec()
