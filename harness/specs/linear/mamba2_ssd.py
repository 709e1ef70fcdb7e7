"""Mamba-2 SSD chunk scan, combined forward (catalog rows 30 `_chunk_scan_fwd`, 96 `_state_passing_fwd`,
99 `_chunk_state_fwd` of mamba_ssm, run end to end by mamba_ssm `mamba_chunk_scan_combined`; row 100 vLLM
`mamba_chunk_scan_combined_varlen`; row 101 SGLang `mamba_chunk_scan_combined`).

The prefill path of a Mamba-2 mixer.  Per sequence, head h (group g = h // (H / G)), token t, with state
S [P, N] starting at zero:

    d_t = softplus(dt_t + dt_bias_h)            (dt_limit (0, inf): no clamp)
    S_t = exp(d_t A_h) S_{t-1} + d_t x_t B_t^T   (x_t [P], B_t [N] of group g)
    y_t = S_t C_t + D_h x_t

computed by every provider chunk-wise (chunk cumsum of dA, B C^T per chunk, chunk states, state passing
between chunks, chunk scan output).

Shapes: `batch` sequences of T tokens; x [batch, T, H, P]; dt [batch, T, H] (raw, before softplus);
A [H] fp32 (negative: -exp(A_log)); B, C [batch, T, G, N]; D [H] fp32; dt_bias [H] fp32; out y like x.
vLLM / SGLang take the same tokens packed (varlen, cu_seqlens); their adapters only reshape.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import generator, randn, torch_dtype


def mamba2_dims(model: ModelShapes) -> dict[str, int] | None:
    """Per-GPU Mamba-2 mixer dims (heads split over TP; groups too when they divide, else replicated as vLLM
    does), or None when the model has no Mamba-2 layers."""
    if model.get("ssm.kind", None) != "mamba2":
        return None
    tp = model.tp
    h, g = model.get("ssm.nheads"), model.get("ssm.ngroups")
    if h % tp:
        return None
    return {"H": h // tp, "P": model.get("ssm.headdim"), "G": g // tp if g % tp == 0 else g,
            "N": model.get("ssm.d_state"), "chunk": model.get("ssm.chunk_size")}


class Mamba2SSDSpec(KernelSpec):
    id = "mamba2_ssd"
    category = "linear"
    catalog_rows = (30, 96, 99, 100, 101)
    token_dim = 'T'
    title = "Mamba-2 SSD chunk scan, combined forward (chunk cumsum, states, state passing, scan)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = mamba2_dims(model)
        if dims is None:
            return []
        return [Case(model.name, "prefill", {"batch": 1, "T": t, **dims})
                for t in model.tokens("prefill", quick=quick)]

    def test_cases(self) -> list[Case]:
        return [
            Case("test", "test", {"batch": 2, "T": 7, "H": 4, "P": 3, "G": 2, "N": 5, "chunk": 4}),
            Case("test", "test", {"batch": 1, "T": 5, "H": 2, "P": 4, "G": 1, "N": 3, "chunk": 8}),
        ]

    def check_cases(self) -> list[Case]:
        # Mamba-2 2.7B head/state dims and chunk 256; two sequences of 300 tokens (a partial last chunk),
        # 2 groups over 8 heads so the group mapping is exercised
        return [Case("check", "test", {"batch": 2, "T": 300, "H": 8, "P": 64, "G": 2, "N": 128, "chunk": 256})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        b, t, h, hp, gr, n = p["batch"], p["T"], p["H"], p["P"], p["G"], p["N"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        # Mamba2.__init__: A = -exp(A_log), A_log = log(U[1, 16]); dt_bias = softplus^-1(dt0), dt0 in
        # [1e-3, 1e-1] log-uniform; D = 1.  Perturb D so a dropped skip term shows.
        a = -torch.empty(h, device=device).uniform_(1.0, 16.0, generator=gen)
        dt0 = torch.exp(torch.empty(h, device=device).uniform_(-6.9, -2.3, generator=gen))
        dt_bias = dt0 + torch.log(-torch.expm1(-dt0))
        return {
            "x": randn((b, t, h, hp), gen, device).to(dt),
            "dt": (0.5 * randn((b, t, h), gen, device)).to(dt),
            "A": a,
            "B": randn((b, t, gr, n), gen, device).to(dt),
            "C": randn((b, t, gr, n), gen, device).to(dt),
            "D": 1.0 + 0.1 * randn((h,), gen, device),
            "dt_bias": dt_bias,
            "chunk_size": p["chunk"],
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(inputs["x"].shape, dtype=torch_dtype(dtype), device=inputs["x"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """Token-by-token recurrence in fp32, all sequences and heads at once."""
        x = inputs["x"].float()
        b, t, h, hp = x.shape
        rep = h // inputs["B"].shape[2]
        bm = inputs["B"].float().repeat_interleave(rep, dim=2)  # [b, t, h, N]
        cm = inputs["C"].float().repeat_interleave(rep, dim=2)
        d = F.softplus(inputs["dt"].float() + inputs["dt_bias"].float())  # [b, t, h]
        decay = torch.exp(d * inputs["A"].float())
        s = torch.zeros(b, h, hp, bm.shape[-1], dtype=torch.float32, device=x.device)
        y = torch.empty_like(x)
        for i in range(t):
            s = decay[:, i, :, None, None] * s + (d[:, i, :, None] * x[:, i])[..., None] * bm[:, i, :, None, :]
            y[:, i] = torch.einsum("bhpn,bhn->bhp", s, cm[:, i])
        return y + inputs["D"].float()[:, None] * x

    def tolerance(self, dtype: str) -> Tolerance:
        # bf16 x/B/C/dt, fp32 accumulation and fp32 chunk states in all three providers; the bf16 output
        # rounding alone is ~2e-3.  A dropped D, dt_bias or softplus gives > 5e-2.
        return Tolerance(1e-2, "bf16 inputs/output, fp32 states and accumulation (mamba_ssm test_ssd bf16 rtol)")

    def flops(self, case: Case) -> float:
        """Per token: C B^T inside the chunk (2 Q N per group), and per head the chunk state (2 P N), the
        output from the carried state (2 P N) and the intra-chunk (C B^T o L) x product (2 Q P); Q = chunk."""
        p = case.params
        q = min(p["chunk"], p["T"])
        per_token = p["G"] * 2 * q * p["N"] + p["H"] * (4 * p["P"] * p["N"] + 2 * q * p["P"])
        return float(p["batch"] * p["T"] * per_token)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        tokens = p["batch"] * p["T"]
        elt = torch_dtype(dtype).itemsize
        return float(tokens * elt * (2 * p["H"] * p["P"] + 2 * p["G"] * p["N"] + p["H"]) + 3 * p["H"] * 4)


SPEC = Mamba2SSDSpec()
