"""Expert-parallel unpermute + top-k reduce (catalog rows 47, the gather half: vLLM `_fwd_kernel_ep_gather` via
`ep_gather`, fused_moe/deep_gemm_utils.py, called by `deepgemm_unpermute_and_reduce` in the DeepGEMM MoE path;
and 46: SGLang `deepep_post_reorder_triton_kernel` via `moe_unpermute`, kernels/ops/moe/ep_moe_kernels.py, the
same operation on DeepEP's layout, where remote slots are marked by src2dst = -1 instead of an expert map).

Math, token t and slots j < top_k with global expert e = topk_ids[t, j]:

    out[t] = sum_{j : expert_map[e] >= 0} w[t, j] * a[inv_perm[t, j]]

a [R, H] bf16 holds the grouped-GEMM outputs in expert-sorted order (R = T * top_k rows); inv_perm [T, top_k]
int32 the row of each slot; w [T, top_k] fp32; expert_map [E] int32 maps global experts to this rank's local
ids or -1 (experts on other ranks: their slots are reduced on those ranks).  out [T, H] bf16.

Cases: MoE models with expert parallelism over 2 ranks (this rank owns the first E / 2 experts), every decode
and prefill token count, H = hidden_size.  (The scatter half, `ep_scatter`, places tokens with atomics, so its
layout is order-free within an expert; it is not wired.)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.moe.routing import token_expert_cases

EP_RANKS = 2


class EpGatherSpec(KernelSpec):
    id = "ep_gather"
    category = "moe"
    catalog_rows = (46, 47)
    token_dim = 'T'
    title = "EP MoE unpermute + weighted top-k reduce of local experts' outputs"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_expert_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "E": 8, "top_k": 3, "H": 96}),
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
        w, ids = torch.topk(logits.softmax(-1), k, dim=-1)
        local = e // EP_RANKS
        expert_map = torch.where(torch.arange(e, device=device) < local, torch.arange(e, device=device),
                                 torch.full((e,), -1, device=device)).to(torch.int32)
        # expert-sorted rows: slots in (expert, slot) order, as the permute step leaves them
        order = torch.argsort(ids.flatten() * (t * k) + torch.arange(t * k, device=device))
        inv_perm = torch.empty(t * k, dtype=torch.int64, device=device)
        inv_perm[order] = torch.arange(t * k, device=device)
        a = torch.randn(t * k, h, generator=g, device=device)
        return {"a": a.to(torch.bfloat16), "topk_ids": ids.to(torch.int32).contiguous(),
                "topk_weights": (w / w.sum(-1, keepdim=True)).contiguous(),
                "inv_perm": inv_perm.view(t, k).to(torch.int32).contiguous(), "expert_map": expert_map}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(case.params["T"], case.params["H"], dtype=torch.bfloat16, device=inputs["a"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        local = inputs["expert_map"][inputs["topk_ids"].long()] >= 0
        w = torch.where(local, inputs["topk_weights"], torch.zeros_like(inputs["topk_weights"]))
        rows = inputs["a"].float()[inputs["inv_perm"].long()]  # [T, top_k, H]
        return (rows * w[..., None]).sum(1)

    def tolerance(self, dtype: str) -> Tolerance:
        # vLLM accumulates in fp32 and stores bf16 (~1.1e-3 rel.); SGLang casts the weight to bf16 and accumulates
        # the top-k sum in bf16 (one rounding per slot: ~3e-3 at top-8).  Reducing remote slots too, or a wrong
        # row, is O(1e-1).
        return Tolerance(1e-2, "bf16 weights / accumulation (SGLang), bf16 output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * p["top_k"] * p["H"] / EP_RANKS

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        t, k, h = p["T"], p["top_k"], p["H"]
        return t * k * h * 2 / EP_RANKS + t * k * (4 + 4 + 4) + t * h * 2


SPEC = EpGatherSpec()
