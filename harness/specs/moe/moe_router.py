"""Fused MoE router: router GEMM, logit soft-capping, softmax top-k (catalog row 83, SGLang
`fused_moe_router_shim`, kernels/ops/moe/router.py: `fused_moe_router_cudacore_kernel` for small batches,
`fused_moe_router_tensorcore_kernel` for bs >= 512 or E > 8; Grok-1's routing function, softcap 30, no
renormalization).

Math, token t, router weight Wr [E, H] (fp32, as Grok's gate keeps it), cap c:

    l[t, e] = c * tanh((x[t] . Wr[e]) / c)
    p[t, :] = softmax(l[t, :])                      (over all E experts)
    S_t     = indices of the top_k largest l[t, e]
    out[t, e] = p[t, e] if e in S_t else 0          (no renormalization: the shim asserts renormalize=False)

Output contract: the kernel's (topk_weights, topk_ids) [T, top_k] pairs scattered into a dense fp32 [T, E]
matrix (a torch epilogue in the impl's call), so the order of the top-k slots does not matter.  x [T, H] bf16.

Inputs: x and Wr give logits of std ~4 (the cap bends the largest by ~1%); tokens whose top_k-th and
(top_k+1)-th logits are within 0.05 are redrawn, so the top-k set is unambiguous at the kernels' precision (the
tensor-core path runs its fp32 dot in TF32: ~1e-3 absolute logit error at this scale).

Cases: models whose shape file gives `moe.router_logit_softcapping` (shapes/grok-2.yaml: H 8192, E 8, top-2, cap
30; Grok-1's router is the same with H 6144, but its HF configs carry no such key).  check_cases() covers both
kernels (T < 512 with E = 8 runs the CUDA-core kernel, T >= 512 the tensor-core one).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.moe.routing import token_expert_cases

TIE_MARGIN = 0.05
LOGIT_STD = 4.0


def capped_logits(x: torch.Tensor, w: torch.Tensor, cap: float) -> torch.Tensor:
    logits = x.double() @ w.double().t()
    return cap * torch.tanh(logits / cap) if cap else logits


def _ambiguous(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    if top_k >= logits.shape[1]:
        return torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    v = torch.topk(logits, top_k + 1, dim=-1).values
    return (v[:, top_k - 1] - v[:, top_k]) < TIE_MARGIN


class MoeRouterSpec(KernelSpec):
    id = "moe_router"
    category = "moe"
    catalog_rows = (83,)
    token_dim = 'T'
    title = "Fused MoE router: GEMM, logit soft-cap, softmax top-k (dense [T, E] weights)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not (model.has("moe") and model.has("moe.router_logit_softcapping")):
            return []
        return token_expert_cases(model, quick, cap=float(model.get("moe.router_logit_softcapping")))

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 5, "E": 8, "top_k": 2, "H": 96, "cap": 30.0}),
                Case("test", "test", {"T": 9, "E": 16, "top_k": 2, "H": 256, "cap": 30.0})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "E": 8, "top_k": 2, "H": 6144, "cap": 30.0}),
                Case("check", "test", {"T": 600, "E": 8, "top_k": 2, "H": 6144, "cap": 30.0})]

    def invalid_reason(self, case: Case, dtype: str) -> str | None:
        p = case.params
        block_k = 256 if p["E"] < 256 else 64
        if (p["T"] >= 512 or p["E"] > 8) and p["H"] % block_k == 0 and p["top_k"] > 2:
            return f"the tensor-core router kernel SGLang picks here supports top_k <= 2 (top_k={p['top_k']})"
        return None

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        t, e, k, h = p["T"], p["E"], p["top_k"], p["H"]
        g = torch.Generator(device=device).manual_seed(seed)
        w = torch.randn(e, h, generator=g, device=device) * (LOGIT_STD / h**0.5)
        x = torch.randn(t, h, generator=g, device=device).to(torch.bfloat16)
        for _ in range(100):
            bad = _ambiguous(capped_logits(x, w, p["cap"]), k)
            if not bad.any():
                break
            x[bad] = torch.randn(int(bad.sum()), h, generator=g, device=device).to(torch.bfloat16)
        else:
            raise RuntimeError(f"{self.id}: could not draw tokens with an unambiguous top-{k}")
        return {"x": x.contiguous(), "router_weight": w.contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(case.params["T"], case.params["E"], dtype=torch.float32, device=inputs["x"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        logits = capped_logits(inputs["x"], inputs["router_weight"], p["cap"])
        probs = logits.softmax(-1)
        ids = torch.topk(logits, p["top_k"], dim=-1).indices
        out = torch.zeros_like(probs)
        out.scatter_(1, ids, probs.gather(1, ids))
        return out.float()

    def tolerance(self, dtype: str) -> Tolerance:
        # Router weights rounded to TF32 (the tensor-core path's fp32 dot) move the result by <= 3.5e-4 (CPU
        # emulation, tests' shapes, seeds 0-2); a missing soft-cap lands 8e-3..2e-2 away, renormalized weights
        # 3e-2..2e-1, a wrong expert >= 1.9e-1.
        return Tolerance(3e-3, "fp64 ref; slack for a TF32 router GEMM (tensor-core path)")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * p["E"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * 2 + p["E"] * p["H"] * 4 + p["T"] * p["E"] * 4


SPEC = MoeRouterSpec()
