"""Mamba-2 selective state update, one decode step (catalog row 84: mamba_ssm `selective_state_update`; vLLM
0.33.0's fork of it in vllm/model_executor/layers/mamba/ops/mamba_ssm.py).

Per request b, head h (group g = h // (H / G)), with the cached state S [P, N]:

    d = softplus(dt_{b,h} + dt_bias_h)
    S <- exp(d A_h) S + d x_{b,h} B_{b,g}^T
    y_{b,h} = S C_{b,g} + D_h x_{b,h}

Shapes as the Mamba-2 decode step passes them (per-head scalars broadcast over P and N with stride-0 views,
which both kernels detect as TIE_HDIM): state [batch, H, P, N] (model dtype, the serving default);
x [batch, H, P]; dt [batch, H] (raw); A [H] fp32 (negative); B, C [batch, G, N]; D, dt_bias [H] fp32;
named outputs y [batch, H, P] and state [batch, H, P, N] (the updated state in the state dtype: the dominant
traffic), both compared.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import generator, randn, torch_dtype
from harness.specs.linear.mamba2_ssd import mamba2_dims


class Mamba2StateUpdateSpec(KernelSpec):
    id = "mamba2_state_update"
    category = "linear"
    catalog_rows = (84,)
    token_dim = 'batch'
    title = "Mamba-2 selective state update (decode step)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = mamba2_dims(model)
        if dims is None:
            return []
        dims = {k: v for k, v in dims.items() if k != "chunk"}
        return [Case(model.name, "decode", {"batch": t, **dims}) for t in model.tokens("decode", quick=quick)]

    def test_cases(self) -> list[Case]:
        return [
            Case("test", "test", {"batch": 3, "H": 4, "P": 3, "G": 2, "N": 5}),
            Case("test", "test", {"batch": 1, "H": 2, "P": 4, "G": 1, "N": 3}),
        ]

    def check_cases(self) -> list[Case]:
        # Mamba-2 2.7B head and state dims (vLLM ships a tuned H100 file for headdim 64, dstate 128)
        return [Case("check", "test", {"batch": 5, "H": 8, "P": 64, "G": 2, "N": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        b, h, hp, gr, n = p["batch"], p["H"], p["P"], p["G"], p["N"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        # Mamba2.__init__ domains: A = -U[1, 16], dt_bias = softplus^-1(dt0), dt0 log-uniform in [1e-3, 1e-1]
        a = -torch.empty(h, device=device).uniform_(1.0, 16.0, generator=gen)
        dt0 = torch.exp(torch.empty(h, device=device).uniform_(-6.9, -2.3, generator=gen))
        return {
            "state": randn((b, h, hp, n), gen, device).to(dt),
            "x": randn((b, h, hp), gen, device).to(dt),
            "dt": (0.5 * randn((b, h), gen, device)).to(dt),
            "A": a,
            "B": randn((b, gr, n), gen, device).to(dt),
            "C": randn((b, gr, n), gen, device).to(dt),
            "D": 1.0 + 0.1 * randn((h,), gen, device),
            "dt_bias": dt0 + torch.log(-torch.expm1(-dt0)),
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x, state = inputs["x"], inputs["state"]
        return {"y": torch.empty(x.shape, dtype=torch_dtype(dtype), device=x.device),
                "state": torch.empty(state.shape, dtype=state.dtype, device=state.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x = inputs["x"].float()
        rep = x.shape[1] // inputs["B"].shape[1]
        bm = inputs["B"].float().repeat_interleave(rep, dim=1)  # [batch, H, N]
        cm = inputs["C"].float().repeat_interleave(rep, dim=1)
        d = F.softplus(inputs["dt"].float() + inputs["dt_bias"].float())  # [batch, H]
        s = torch.exp(d * inputs["A"].float())[..., None, None] * inputs["state"].float()
        s = s + (d[..., None] * x)[..., None] * bm[:, :, None, :]
        y = torch.einsum("bhpn,bhn->bhp", s, cm) + inputs["D"].float()[:, None] * x
        return {"y": y, "state": s}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # bf16 output rounding alone is ~1.5e-3 relative RMS; mamba_ssm's kernel measured 3.2e-3 on the test
        # shape (Triton interpret mode on CPU, 2026-11-25), so 1e-2.  A dropped D, softplus or dt_bias, or B/C
        # swapped gives > 5e-2.  The new state is the fp32 update rounded once to the state dtype (bf16: ~1.1e-3
        # relative RMS), so the same bound.
        tol = Tolerance(1e-2, "bf16 output of fp32 math; mamba_ssm measured 3.2e-3 (Triton interpreter, CPU)")
        return {"y": tol, "state": Tolerance(1e-2, "fp32 update rounded once to the bf16 state")}

    def flops(self, case: Case) -> float:
        """Per request, head and state element: decay (1), rank-1 update (2), output dot (2)."""
        p = case.params
        return float(p["batch"] * p["H"] * p["P"] * p["N"] * 5)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        state = 2 * p["batch"] * p["H"] * p["P"] * p["N"] * elt  # read and written back
        io = p["batch"] * elt * (2 * p["H"] * p["P"] + p["H"] + 2 * p["G"] * p["N"])
        return float(state + io + 3 * p["H"] * 4)


SPEC = Mamba2StateUpdateSpec()
