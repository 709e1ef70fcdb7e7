"""KDA (Kimi Delta Attention) chunked prefill (catalog rows 7, fla `chunk_kda_fwd_intra` /
`chunk_kda_fwd_kernel_inter_solve_fused` inside `chunk_kda`, and 9, SGLang's KDA `chunk_kda`): the
recurrence of kda_fused_recurrent (harness/specs/attention/kda_fused_recurrent.py: L2-normed q/k, per-channel
decay exp(g), delta-rule update, readout) over whole prompts, computed chunk-parallel by the kernels.

Shapes (varlen, flattened as serving runs it): q, k [1, N, H, K]; v [1, N, HV, V] (bf16/fp16); g [1, N, HV, K]
fp32 log-decays; beta [1, N, HV]; cu_seqlens [B + 1] int64; initial_state [B, HV, K, V] fp32 (a cached
state, as in chunked prefill); out [1, N, HV, V].  A prefill of T tokens is split into sequences of at most
8192 tokens; test cases are ragged.  The reference runs the recurrence token by token in fp32.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.attention._common import torch_dtype
from harness.specs.attention.kda_fused_recurrent import kda_inputs, kda_recurrence
from harness.specs.attention.kda_gate import kda_heads

MAX_SEQ = 8192


def chunk_lens(p: dict) -> list[int]:
    if not p.get("ragged", 0):
        return [p["S"]] * p["B"]
    return [max(1, p["S"] - (b * 29) % max(1, p["S"] // 2)) if b else p["S"] for b in range(p["B"])]


class KdaChunkSpec(KernelSpec):
    id = "kda_chunk"
    category = "attention"
    catalog_rows = (7, 9)
    token_dim = 'S'
    title = "KDA chunked prefill (varlen, cached initial state)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        hk = kda_heads(model)
        if hk is None or not model.has("linear_attention.head_v_dim"):
            return []
        v = int(model.get("linear_attention.head_v_dim"))
        out = []
        for t in model.tokens("prefill", quick=quick):
            s = min(t, MAX_SEQ)
            out.append(Case(model.name, "prefill", {"B": max(1, t // s), "S": s, "H": hk[0], "HV": hk[0],
                                                     "K": hk[1], "V": v, "ragged": 0}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "S": 19, "H": 2, "HV": 2, "K": 16, "V": 24, "ragged": 1}),
                Case("test", "test", {"B": 1, "S": 5, "H": 1, "HV": 1, "K": 8, "V": 8, "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # several 64-token chunks plus partial ones; K = V = 128 as Kimi Linear
        return [Case("check", "test", {"B": 3, "S": 200, "H": 2, "HV": 2, "K": 128, "V": 128, "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        lens = chunk_lens(p)
        inp = kda_inputs(1, sum(lens), p["H"], p["HV"], p["K"], p["V"], torch_dtype(dtype, self.id), seed, device)
        g = torch.Generator(device=device).manual_seed(seed + 1)
        inp["initial_state"] = torch.randn(len(lens), p["HV"], p["K"], p["V"], generator=g, device=device) \
            / p["K"] ** 0.5
        cu = torch.zeros(len(lens) + 1, dtype=torch.int64, device=device)
        cu[1:] = torch.cumsum(torch.tensor(lens, device=device), 0)
        inp["cu_seqlens"] = cu
        return inp

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["v"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        cu = inputs["cu_seqlens"].tolist()
        out = torch.empty(inputs["v"].shape, dtype=torch.float32, device=inputs["v"].device)
        for b in range(len(cu) - 1):
            sl = slice(cu[b], cu[b + 1])
            out[:, sl] = kda_recurrence(inputs["q"][:, sl], inputs["k"][:, sl], inputs["v"][:, sl],
                                        inputs["g"][:, sl], inputs["beta"][:, sl],
                                        inputs["initial_state"][b:b + 1], inputs["scale"])
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        # the chunk form feeds bf16/fp16 q, k, w, u and the within-chunk matrices to tl.dot (fp32 accumulate);
        # fla's own KDA tests bound the output's RMS ratio vs the fp32 recurrence at 5e-3 (bf16).
        if dtype == "bf16":
            return Tolerance(2e-2, "bf16 operands in the chunked WY form, fp32 state; fla tests: 5e-3 RMS ratio")
        return Tolerance(8e-3, "fp16 operands in the chunked WY form, fp32 state")

    def flops(self, case: Case) -> float:
        """Useful work of the chunk algorithm with chunk C=64: per chunk and head, the within-chunk K K^T and
        Q K^T (2 * 2C^2 K), the triangular solve (C^3 / 3), w/u (2 * 2C^2 (K+V)/2), state readout and update
        (2 * 2C K V), output (2C^2 V)."""
        p = case.params
        c = 64
        tokens = sum(chunk_lens(p))
        per_token = (4 * c * p["K"] + c * c / 3 + 2 * c * (p["K"] + p["V"]) + 4 * p["K"] * p["V"] + 2 * c * p["V"])
        return float(tokens * p["HV"] * per_token)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        n, b = sum(chunk_lens(p)), p["B"]
        per_token = 2 * p["H"] * p["K"] * elt + 2 * p["HV"] * p["V"] * elt + p["HV"] * p["K"] * 4 + p["HV"] * elt
        # q, k, v, g, beta read and out written per token; initial_state read once (no final state in the
        # contract, so none is counted written)
        return n * per_token + 1.0 * b * p["HV"] * p["K"] * p["V"] * 4


SPEC = KdaChunkSpec()
