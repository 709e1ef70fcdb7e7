"""Chunk output of the chunked linear-attention family (catalog row 25: fla `chunk_fwd_o`,
fla/ops/common/chunk_o.py; the copies in vLLM 0.33.0 vllm/third_party/flash_linear_attention/ops/chunk_o.py and
SGLang 0.5.23 sglang/kernels/ops/attention/fla/chunk_o.py), here with the Gated DeltaNet scalar gate.

Per packed sequence, 64-token chunk c with start state h_c [K, V], value head j (query/key head j // (HV / H)),
row i of the chunk:

    o_i = scale * ( exp(g_i) q_i h_c + sum_{s <= i in the chunk} (q_i . k_s) exp(g_i - g_s) v_s )

Shapes: q, k [1, L, H, K]; v [1, L, HV, V] (the delta rule's v_new); h [1, NC, HV, K, V] (chunk start states,
chunks of all sequences in order, NC = N * ceil(T / 64)); g [1, L, HV] fp32 chunk-local cumsum of the log decay;
cu_seqlens [N + 1]; out o [1, L, HV, V].  vLLM / SGLang keep h as [.., V, K] and fla decays in log2: adapters
translate in prepare.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import (
    chunk_local_cumsum,
    cu_seqlens,
    gdn_heads,
    generator,
    l2_normalized,
    randn,
    slow_log_decay,
    token_cases,
    torch_dtype,
)

CHUNK = 64


class ChunkOSpec(KernelSpec):
    id = "chunk_o"
    category = "linear"
    catalog_rows = (25,)
    token_dim = 'T'
    title = "Chunked linear-attention output: inter-chunk (q h) + gated intra-chunk (q k^T) v"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = gdn_heads(model)
        if dims is None:
            return []
        return token_cases(model, "prefill", quick, "T", dims, extra={"N": 1})

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 70, "N": 2, "H": 1, "HV": 2, "K": 8, "V": 6}),
                Case("test", "test", {"T": 5, "N": 1, "H": 2, "HV": 2, "K": 4, "V": 3})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 150, "N": 2, "H": 2, "HV": 4, "K": 128, "V": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        n, t, h, hv, kd, vd = p["N"], p["T"], p["H"], p["HV"], p["K"], p["V"]
        dt = torch_dtype(dtype)
        gen = generator(device, seed)
        length = n * t
        cu = cu_seqlens(n, t, device)
        chunks = n * math.ceil(t / CHUNK)
        return {
            "q": l2_normalized((1, length, h, kd), gen, device).to(dt),
            "k": l2_normalized((1, length, h, kd), gen, device).to(dt),
            "v": randn((1, length, hv, vd), gen, device).to(dt),
            "h": randn((1, chunks, hv, kd, vd), gen, device).to(dt),
            "g": chunk_local_cumsum(slow_log_decay((1, length, hv), gen, device), cu, CHUNK),
            "cu_seqlens": cu,
            "scale": kd ** -0.5,
        }

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(inputs["v"].shape, dtype=torch_dtype(dtype), device=inputs["v"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        v = inputs["v"][0].float()
        hv = v.shape[1]
        rep = hv // inputs["q"].shape[2]
        q = inputs["q"][0].float().repeat_interleave(rep, dim=1)
        k = inputs["k"][0].float().repeat_interleave(rep, dim=1)
        g = inputs["g"][0].float()
        hs = inputs["h"][0].float()
        out = torch.empty_like(v)
        bounds = inputs["cu_seqlens"].tolist()
        ci = 0
        for s, e in zip(bounds[:-1], bounds[1:]):
            for c in range(s, e, CHUNK):
                n = min(c + CHUNK, e) - c
                qc, kc, vc, gc = q[c:c + n], k[c:c + n], v[c:c + n], g[c:c + n]  # [n, HV, *]
                inter = torch.einsum("ihk,hkv->ihv", qc, hs[ci]) * torch.exp(gc)[..., None]
                scores = torch.einsum("ihk,jhk->hij", qc, kc)
                decay = torch.exp(gc.t()[:, :, None] - gc.t()[:, None, :])
                scores = torch.tril(scores * decay)
                intra = torch.einsum("hij,jhv->ihv", scores, vc)
                out[c:c + n] = inputs["scale"] * (inter + intra)
                ci += 1
        return out[None]

    def tolerance(self, dtype: str) -> Tolerance:
        # bf16 operands (the kernels also round q k^T to bf16 before the dot with v), fp32 accumulation,
        # bf16 output: ~3e-3.  A missing gate on either term or a transposed h gives > 1e-1.
        return Tolerance(1e-2, "bf16 operands and intra-chunk scores, fp32 accumulation, bf16 output")

    def flops(self, case: Case) -> float:
        """Per token and value head: q h (2KV), q k^T over the chunk (2CK, full tile), (q k^T) v (2CV)."""
        p = case.params
        return float(p["N"] * p["T"] * p["HV"] * (2 * p["K"] * p["V"] + 2 * CHUNK * (p["K"] + p["V"])))

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        length = p["N"] * p["T"]
        chunks = p["N"] * math.ceil(p["T"] / CHUNK)
        return float(elt * (2 * length * p["H"] * p["K"] + 2 * length * p["HV"] * p["V"]
                            + chunks * p["HV"] * p["K"] * p["V"]) + 4 * length * p["HV"])


SPEC = ChunkOSpec()
