"""Zero-expert ("identity") contribution of a MoE layer with zero-computation experts (catalog row 45, vLLM
`zero_experts_compute_triton` -> `compute_identity_kernel`, fused_moe/fused_moe.py; called by ZeroExpertRouter,
LongCat-Flash style routing).

The router picks top_k of E + Z experts; ids >= E are zero-computation experts whose output is the token itself
(zero_expert_type "identity").  Per token t:

    out[t] = sum_{j : ids[t, j] >= E} w[t, j] * x[t]

Shapes: x [T, H] bf16; ids [T, top_k] int32 (distinct per token, in [0, E + Z)); w [T, top_k] fp32 (softmax
router weights).  out [T, H] bf16 (the launcher returns a new tensor in x's dtype).  H is a multiple of the
kernel's BLOCK_SIZE 256: the launcher's grid covers T * (H // 256) blocks, so a tail would stay unwritten
(invalid_reason says so).

Cases: models whose shape file lists `moe.num_zero_experts` (shapes/longcat-flash-chat.yaml: 512 routed + 256
zero experts, top-12, H 6144); every decode and prefill token count, H = hidden_size.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance

KERNEL_BLOCK = 256  # zero_experts_compute_triton's BLOCK_SIZE


class ZeroExpertsIdentitySpec(KernelSpec):
    id = "zero_experts_identity"
    category = "moe"
    catalog_rows = (45,)
    token_dim = 'T'
    title = "Zero-expert identity contribution: router-weighted copy of the token for zero experts"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not (model.has("moe") and model.has("moe.num_zero_experts")):
            return []
        dims = {"E": int(model.get("moe.num_experts")), "Z": int(model.get("moe.num_zero_experts")),
                "top_k": int(model.get("moe.top_k")), "H": int(model.get("hidden_size"))}
        return [Case(model.name, regime, {"T": t, **dims})
                for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "E": 6, "Z": 3, "top_k": 3, "H": 512}),
                Case("test", "test", {"T": 1, "E": 4, "Z": 2, "top_k": 2, "H": 256})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "E": 64, "Z": 32, "top_k": 12, "H": 1024})]

    def invalid_reason(self, case: Case, dtype: str) -> str | None:
        if case.params["H"] % KERNEL_BLOCK:
            return f"H={case.params['H']} is not a multiple of the kernel's BLOCK_SIZE {KERNEL_BLOCK}"
        return None

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        t, e, z, k, h = p["T"], p["E"], p["Z"], p["top_k"], p["H"]
        g = torch.Generator(device=device).manual_seed(seed)
        logits = torch.randn(t, e + z, generator=g, device=device)
        w, ids = torch.topk(logits.softmax(-1), k, dim=-1)
        x = torch.randn(t, h, generator=g, device=device)
        return {"hidden_states": x.to(torch.bfloat16), "topk_ids": ids.to(torch.int32).contiguous(),
                "topk_weights": w.contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        x = inputs["hidden_states"]
        return torch.empty(x.shape, dtype=torch.bfloat16, device=x.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        ids, w = inputs["topk_ids"], inputs["topk_weights"].float()
        zero_w = torch.where(ids >= case.params["E"], w, torch.zeros_like(w)).sum(-1, keepdim=True)
        return inputs["hidden_states"].float() * zero_w

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 accumulation of top_k products, one bf16 rounding of the output (~2e-3 rel.); counting the normal
        # experts' weights too, or none, is O(1).
        return Tolerance(1e-2, "fp32 accumulate, bf16 output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * p["top_k"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * (2 + 2) + p["T"] * p["top_k"] * (4 + 4)


SPEC = ZeroExpertsIdentitySpec()
