"""Gated RMSNorm of the Mamba-2 mixer (catalog row 77, vLLM `mamba/ops/layernorm_gated._layer_norm_fwd_1pass_kernel`;
mamba_ssm's `ops/triton/layernorm_gated` ships the same kernel and is the second provider).

Math (norm_before_gate=False, the Mamba-2 setting), per row t and group g of G columns:

    u = x * silu(z);   y[t, gG + i] = u[t, gG + i] / sqrt(mean_i u[t, gG + i]^2 + eps) * w[gG + i]

Shapes: x, z [T, D] bf16 (D = ssm.d_inner / tp); w [D] bf16; G = d_inner / ngroups; out [T, D] bf16.
Cases: models with an `ssm` section (Mamba-2); eps = rms_norm_eps (1e-5 for Mamba-2).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance


class RmsNormGatedSpec(KernelSpec):
    id = "rms_norm_gated"
    category = "normalization"
    catalog_rows = (77,)
    token_dim = 'T'
    title = "Gated RMSNorm (x * silu(z), grouped RMS, weight), Mamba-2 mixer output norm"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not (model.has("ssm.d_inner") and model.has("ssm.ngroups")):
            return []
        d_inner, ngroups = int(model.get("ssm.d_inner")), int(model.get("ssm.ngroups"))
        dims = {"D": d_inner // model.tp, "G": d_inner // ngroups, "eps": float(model.get("rms_norm_eps", 1e-5))}
        return [Case(model.name, regime, {"T": t, **dims})
                for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 5, "D": 96, "G": 48, "eps": 1e-5}),
                Case("test", "test", {"T": 1, "D": 100, "G": 100, "eps": 1e-6})]

    def check_cases(self) -> list[Case]:
        # one group spanning the row: vLLM's forward_cuda takes the Triton path only for ngroups == 1
        return [Case("check", "test", {"T": 37, "D": 1280, "G": 1280, "eps": 1e-5})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(p["T"], p["D"], generator=g, device=device)
        z = 2.0 * torch.randn(p["T"], p["D"], generator=g, device=device)
        w = 1.0 + 0.2 * torch.randn(p["D"], generator=g, device=device)  # trained norm weights sit near 1
        return {"x": x.to(torch.bfloat16), "z": z.to(torch.bfloat16), "weight": w.to(torch.bfloat16)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["x"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        u = inputs["x"].float() * F.silu(inputs["z"].float())
        t, d = u.shape
        ug = u.view(t, d // p["G"], p["G"])
        y = ug * torch.rsqrt(ug.pow(2).mean(-1, keepdim=True) + p["eps"])
        return y.view(t, d) * inputs["weight"].float()

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 math in the kernel, one bf16 store: ~1.1e-3 rel. norm; norm-before-gate, a wrong group or a
        # missing weight is > 1e-1.
        return Tolerance(5e-3, "fp32 compute, bf16 output rounding")

    def flops(self, case: Case) -> float:
        p = case.params
        return 8.0 * p["T"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["D"] * 2 * 3 + p["D"] * 2


SPEC = RmsNormGatedSpec()
