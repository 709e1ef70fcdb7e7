"""Residual-add + RMSNorm of the Mamba block (catalog row 76, mamba_ssm `ops/triton/layer_norm`
`_layer_norm_fwd_1pass_kernel` via `rms_norm_fn`, the fused_add_norm path of mamba_ssm's Block).

Math, per row t:

    r'[t] = x[t] + r[t]   (kept in fp32: residual_in_fp32, the Mamba-2 default)
    y[t, j] = r'[t, j] / sqrt(mean_j r'[t, j]^2 + eps) * w[j]

Shapes: x [T, H] bf16 (the mixer output); r [T, H] fp32 (the running residual); w [H] bf16; y [T, H] bf16.
Named outputs: "y" (the normed rows) and "residual_out" (r', fp32, the residual the next block reads); both
are poisoned and compared.
Cases: models with an `ssm` section; H = hidden_size, eps = rms_norm_eps.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance


class AddRmsNormSpec(KernelSpec):
    id = "add_rms_norm"
    category = "normalization"
    catalog_rows = (76,)
    token_dim = 'T'
    title = "Residual add (fp32 residual) + RMSNorm, Mamba block pre-norm"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("ssm"):
            return []
        dims = {"H": int(model.get("hidden_size")), "eps": float(model.get("rms_norm_eps", 1e-5))}
        return [Case(model.name, regime, {"T": t, **dims})
                for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 5, "H": 100, "eps": 1e-5}),
                Case("test", "test", {"T": 1, "H": 33, "eps": 1e-6})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 37, "H": 2560, "eps": 1e-5})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(p["T"], p["H"], generator=g, device=device)
        r = 3.0 * torch.randn(p["T"], p["H"], generator=g, device=device)
        w = 1.0 + 0.2 * torch.randn(p["H"], generator=g, device=device)
        return {"x": x.to(torch.bfloat16), "residual": r, "weight": w.to(torch.bfloat16)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return {"y": torch.empty_like(inputs["x"]), "residual_out": torch.empty_like(inputs["residual"])}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        s = inputs["x"].float() + inputs["residual"]
        y = s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + case.params["eps"])
        return {"y": y * inputs["weight"].float(), "residual_out": s}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        return {"y": Tolerance(5e-3, "fp32 compute, bf16 output rounding (~1.1e-3)"),
                # one correctly rounded fp32 add of the same two operands on every side: bit-exact expected; a
                # residual rounded to bf16 on the way (~2e-3) or a missing add (~0.3) fails
                "residual_out": Tolerance(1e-6, "fp32 add of bf16 x and fp32 residual, bit-exact (slack 1e-6)")}

    def flops(self, case: Case) -> float:
        p = case.params
        return 5.0 * p["T"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        # x bf16 + residual fp32 in; y bf16 + residual_out fp32 out (the kernel must write both)
        return p["T"] * p["H"] * (2 + 4 + 2 + 4) + p["H"] * 2


SPEC = AddRmsNormSpec()
