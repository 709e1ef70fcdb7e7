"""MoE token permutation into expert-sorted rows (catalog row 82, SGLang `moe_permute`,
kernels/ops/moe/ep_moe_kernels.py: `deepep_permute_triton_kernel` via `_moe_permute_rows`; the EP-MoE
dispatch-side copy whose inverse is `moe_unpermute`, see ep_gather.py).

Math, token t and slot s = t * top_k + j:

    out[src2dst[s]] = x[t]

x [T, H] bf16; topk_ids [T, top_k] int32; src2dst [T * top_k] int32 the destination row of each slot, a
permutation of 0..T*top_k-1 that sorts slots by expert (what SGLang's `moe_permute_prepare` computes from
topk_ids; here built in make_inputs with a stable sort, part of the input like the routing itself).
out [T * top_k, H] bf16, every row written exactly once.

Cases: MoE models, every decode and prefill token count, H = hidden_size.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.moe.routing import token_expert_cases


class MoePermuteSpec(KernelSpec):
    id = "moe_permute"
    category = "moe"
    catalog_rows = (82,)
    token_dim = 'T'
    title = "MoE permute: copy each token to its top-k expert-sorted rows"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_expert_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "E": 8, "top_k": 3, "H": 600}),
                Case("test", "test", {"T": 1, "E": 4, "top_k": 2, "H": 64})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "E": 64, "top_k": 6, "H": 1024})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        t, e, k, h = p["T"], p["E"], p["top_k"], p["H"]
        g = torch.Generator(device=device).manual_seed(seed)
        logits = torch.randn(t, e, generator=g, device=device)
        ids = torch.topk(logits, k, dim=-1).indices.to(torch.int32)
        order = torch.argsort(ids.flatten().to(torch.int64), stable=True)  # row r holds slot order[r]
        src2dst = torch.empty(t * k, dtype=torch.int32, device=device)
        src2dst[order] = torch.arange(t * k, dtype=torch.int32, device=device)
        x = torch.randn(t, h, generator=g, device=device)
        return {"x": x.to(torch.bfloat16), "topk_ids": ids.contiguous(), "src2dst": src2dst}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        return torch.empty(p["T"] * p["top_k"], p["H"], dtype=torch.bfloat16, device=inputs["x"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        k = case.params["top_k"]
        x = inputs["x"].float()
        out = torch.empty(x.shape[0] * k, x.shape[1], dtype=torch.float32, device=x.device)
        out[inputs["src2dst"].long()] = x.repeat_interleave(k, dim=0)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "exact copy of bf16 rows")

    def flops(self, case: Case) -> float:
        return 0.0

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        t, k, h = p["T"], p["top_k"], p["H"]
        return t * h * 2 + t * k * h * 2 + t * k * (4 + 4)


SPEC = MoePermuteSpec()
