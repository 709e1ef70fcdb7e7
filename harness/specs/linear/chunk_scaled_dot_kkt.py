"""Chunk-scaled K K^T, the first step of the chunked gated delta rule's WY form (catalog row 103: vLLM 0.33.0
`chunk_scaled_dot_kkt_fwd`, vllm/third_party/flash_linear_attention/ops/chunk_scaled_dot_kkt.py; the fla original
fla.ops.common.chunk_scaled_dot_kkt.chunk_scaled_dot_kkt_fwd).

Per packed sequence, chunk of C = 64 tokens (from the sequence start), value head h, rows i / columns j within
the chunk:

    A[i, j] = beta_i (k_i . k_j) exp(g_i - g_j)   for j < i;   0 for j >= i

Shapes: N sequences of T tokens, L = N * T; k [1, L, H, K] (L2-normalized); beta [1, L, HV]; g [1, L, HV] fp32,
the chunk-local cumulative sum of the log decay (natural log; fla's kernel works in log2 and its adapter rescales,
as fla's own pipeline does); cu_seqlens [N + 1]; out A [1, L, HV, C] fp32.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import (
    chunk_kkt_reference,
    chunk_local_cumsum,
    cu_seqlens,
    gdn_heads,
    generator,
    l2_normalized,
    slow_log_decay,
    token_cases,
    torch_dtype,
    unit_gate,
)

CHUNK = 64


def gdn_chunk_inputs(case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
    """k, beta, chunk-local cumsum g and cu_seqlens of a Gated DeltaNet prefill (the kkt / solve_tril inputs)."""
    p = case.params
    n, t, h, hv, kd = p["N"], p["T"], p["H"], p["HV"], p["K"]
    gen = generator(device, seed)
    length = n * t
    cu = cu_seqlens(n, t, device)
    return {
        "k": l2_normalized((1, length, h, kd), gen, device).to(torch_dtype(dtype)),
        "beta": unit_gate((1, length, hv), gen, device).to(torch_dtype(dtype)),
        "g": chunk_local_cumsum(slow_log_decay((1, length, hv), gen, device), cu, CHUNK),
        "cu_seqlens": cu,
    }


def gdn_subop_cases(model: ModelShapes, quick: bool) -> list[Case]:
    dims = gdn_heads(model)
    if dims is None:
        return []
    return token_cases(model, "prefill", quick, "T", {k: dims[k] for k in ("H", "HV", "K")}, extra={"N": 1})


class ChunkScaledDotKKTSpec(KernelSpec):
    id = "chunk_scaled_dot_kkt"
    category = "linear"
    catalog_rows = (103,)
    token_dim = 'T'
    title = "Chunk-scaled beta K K^T with gate decay (gated delta rule WY step)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)  # k / beta dtype; A is fp32 as the GDN pipelines request it

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return gdn_subop_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 70, "N": 2, "H": 1, "HV": 2, "K": 8}),
                Case("test", "test", {"T": 5, "N": 1, "H": 2, "HV": 2, "K": 4})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 150, "N": 2, "H": 2, "HV": 4, "K": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        return gdn_chunk_inputs(case, dtype, device, seed)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        b, length, hv = inputs["beta"].shape
        return torch.empty((b, length, hv, CHUNK), dtype=torch.float32, device=inputs["k"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return chunk_kkt_reference(inputs["k"], inputs["beta"], inputs["g"], inputs["cu_seqlens"], CHUNK)

    def tolerance(self, dtype: str) -> Tolerance:
        # bf16 k in a K-long fp32-accumulated dot; vLLM rounds beta * k to bf16 before the dot (its bf16 x bf16
        # `b_k * b_beta`), fla multiplies beta after it in fp32 (~1e-7).  A CPU model of vLLM's rounding gives
        # 1.7e-3 global rounded to nearest, 3.2e-3 truncated (the H200 measured 3.2e-3, qwen3-next T=2048), worst
        # row < 1.3e-2; with unit keys any such rounding moves an element by < 2^-7 |k_i||k_j| ~ 7.9e-3.  1e-2
        # (4e-2 per row) leaves room for both; a log2 / natural-log mix-up, a dropped beta or chunks not restarted
        # per sequence give > 1e-1, and one element off by 2e-2 fails its row: the H200 vLLM row failure is no
        # rounding, so it must keep failing (tests/specs/test_chunk_scaled_dot_kkt_numerics.py).
        return Tolerance(1e-2, "bf16 operands (vLLM: bf16 beta*k), fp32 accumulation and fp32 output")

    def flops(self, case: Case) -> float:
        """2 K per (i, j) pair of the lower triangle of every chunk (the kernels compute the full C x C)."""
        p = case.params
        return float(p["N"] * p["T"] * p["HV"] * CHUNK * 2 * p["K"] / 2)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        length = p["N"] * p["T"]
        elt = torch_dtype(dtype).itemsize
        return float(length * (p["H"] * p["K"] * elt + p["HV"] * (elt + 4) + p["HV"] * CHUNK * 4))


SPEC = ChunkScaledDotKKTSpec()
