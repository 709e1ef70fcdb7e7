"""Ragged append -> (batch index, KV position) of every appended token (catalog row 86, FlashInfer
`get_batch_indices_positions_kernel`, used before appending new tokens to a paged KV cache).

Math: for request b with appended tokens append_indptr[b] .. append_indptr[b+1] - 1 and KV length seq_lens[b]
(after the append), token i of the ragged batch gets

    batch_indices[i] = b,   positions[i] = seq_lens[b] - (append_indptr[b+1] - i)

Shapes: append_indptr [B + 1] int32, seq_lens [B] int32; out [2, nnz] int32 (row 0 batch indices, row 1
positions), nnz = append_indptr[B].  Exact integer output (tolerance 0).  Decode: B requests appending one
token onto KV lengths from regimes.decode.kv_lens; prefill: a T-token prompt split into requests of at most
8192 new tokens on an equal cached prefix.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.attention._common import decode_kv_lens

MAX_CHUNK = 8192


def appends(p: dict) -> tuple[list[int], list[int]]:
    """(appended tokens, KV lengths after the append) per request; ragged when p['ragged']."""
    b, q, ctx = p["B"], p["Q"], p["ctx"]
    if not p.get("ragged", 0):
        return [q] * b, [ctx + q] * b
    app = [max(1, q - (i * 5) % max(1, q)) for i in range(b)]
    return app, [ctx + (i * 13) % 17 + a for i, a in enumerate(app)]


class BatchIndicesPositionsSpec(KernelSpec):
    id = "batch_indices_positions"
    category = "attention"
    catalog_rows = (86,)
    token_dim = 'B'
    title = "Ragged append indptr -> per-token batch index and KV position"
    dtypes: ClassVar[tuple[str, ...]] = ("int32",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("attention.num_q_heads"):
            return []  # no KV cache to append to (pure SSM models)
        lens = decode_kv_lens(model, quick)
        ctx = lens[0] if lens else 1024
        out = [Case(model.name, "decode", {"B": b, "Q": 1, "ctx": ctx, "ragged": 0})
               for b in model.tokens("decode", quick=quick)]
        for t in model.tokens("prefill", quick=quick):
            q = min(t, MAX_CHUNK)
            out.append(Case(model.name, "prefill", {"B": max(1, t // q), "Q": q, "ctx": q, "ragged": 0}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 5, "Q": 7, "ctx": 3, "ragged": 1}),
                Case("test", "test", {"B": 1, "Q": 1, "ctx": 0, "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # runs longer than the kernel's 128-token step, ragged
        return [Case("check", "test", {"B": 6, "Q": 300, "ctx": 50, "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        app, lens = appends(case.params)
        indptr = torch.zeros(len(app) + 1, dtype=torch.int32, device=device)
        indptr[1:] = torch.cumsum(torch.tensor(app, dtype=torch.int32, device=device), 0)
        return {"append_indptr": indptr, "seq_lens": torch.tensor(lens, dtype=torch.int32, device=device),
                "nnz": sum(app)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(2, inputs["nnz"], dtype=torch.int32, device=inputs["seq_lens"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        indptr, lens = inputs["append_indptr"].long(), inputs["seq_lens"].long()
        counts = indptr[1:] - indptr[:-1]
        batch = torch.repeat_interleave(torch.arange(len(counts), device=lens.device), counts)
        idx = torch.arange(int(indptr[-1]), device=lens.device)
        pos = lens[batch] - (indptr[1:][batch] - idx)
        return torch.stack([batch, pos]).to(torch.int32)

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "integer indices: exact")

    def flops(self, case: Case) -> float:
        return 0.0  # index arithmetic only

    def bytes(self, case: Case, dtype: str) -> float:
        app, _ = appends(case.params)
        b = len(app)
        return (b + 1) * 4.0 + b * 4.0 + 2.0 * sum(app) * 4


SPEC = BatchIndicesPositionsSpec()
