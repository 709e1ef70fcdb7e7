"""Merge two partial attention states (catalog rows 18 vLLM `merge_attn_states_kernel`, 15 FlashInfer
`merge_state_kernel`; SGLang's `merge_state_triton` too).

Math (arXiv 2501.01005 sec. 2.2), per token t and head h, with natural-log LSEs:

    lse = log(exp(lse_a) + exp(lse_b))
    out = exp(lse_a - lse) * v_a + exp(lse_b - lse) * v_b

Shapes: v_a, v_b [T, H, D] (bf16/fp16); lse_a, lse_b [T, H] fp32; out [T, H, D].  Only the merged output is
checked (both upstreams can also write the merged LSE; vLLM is called without it, as its decode-context
path does, FlashInfer always writes it).  Used when attention over a shared prefix / KV chunks is split
(cascade, chunked-prefill context, split-KV): T is the token count, H the per-GPU query heads, D the V head
dim.
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


class MergeAttnStatesSpec(KernelSpec):
    id = "merge_attn_states"
    category = "attention"
    catalog_rows = (18, 15)
    token_dim = 'T'
    title = "Merge two partial attention outputs by their log-sum-exps"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_cases(model, merged_heads(model), quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "H": 3, "D": 40}), Case("test", "test", {"T": 1, "H": 5, "D": 16})]

    def check_cases(self) -> list[Case]:
        # D=128 (a power of two: FlashInfer loops over it, vLLM pads to it); 8 heads
        return [Case("check", "test", {"T": 37, "H": 8, "D": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        va, sa = random_states(p["T"], p["H"], p["D"], g, device)
        vb, sb = random_states(p["T"], p["H"], p["D"], g, device)
        return {"v_a": va.to(dt), "lse_a": sa, "v_b": vb.to(dt), "lse_b": sb}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["v_a"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return merge_reference([inputs["v_a"], inputs["v_b"]], [inputs["lse_a"], inputs["lse_b"]])

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*merge_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        # per element: two scalings and one add; per (t, h): max, two exps, a sum, a log (counted as 5)
        return 3.0 * p["T"] * p["H"] * p["D"] + 5.0 * p["T"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        return 3.0 * p["T"] * p["H"] * p["D"] * elt + 2.0 * p["T"] * p["H"] * 4


SPEC = MergeAttnStatesSpec()
