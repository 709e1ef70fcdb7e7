"""Compaction of DSA top-k token indices into a ragged KV index list (catalog row 35, SGLang
`dsa/triton_kernel._get_valid_kv_indices_kernel`, run by its DSA backend before sparse MLA).

Math: page_table_1 [B, topk] int32 holds the indexer's selected token slots, -1 where nothing was selected
(contexts shorter than topk); kv_indptr [B + 1] = exclusive cumsum of each row's valid count.  The output is
every row's valid entries, in row order and in their order within the row:

    kv_indices[kv_indptr[b] : kv_indptr[b + 1]] = page_table_1[b][page_table_1[b] != -1]

Shapes: out [nnz] int32, nnz = kv_indptr[B].  Exact (tolerance 0).  topk = dsa.index_topk (a power of two,
as the kernel's tl.arange needs); B from decode tokens; each row has min(topk, L) valid slots (L from
regimes.decode.kv_lens), scattered among the -1s so the compaction is exercised.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.attention._common import decode_kv_lens


class DsaValidKvIndicesSpec(KernelSpec):
    id = "dsa_valid_kv_indices"
    category = "sparse"
    catalog_rows = (35,)
    token_dim = 'B'
    title = "DSA: compact valid top-k token indices into a ragged KV index list"
    dtypes: ClassVar[tuple[str, ...]] = ("int32",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("dsa.index_topk"):
            return []
        topk = int(model.get("dsa.index_topk"))
        return [Case(model.name, "decode", {"B": b, "topk": topk, "valid": min(topk, kv)})
                for b in model.tokens("decode", quick=quick) for kv in decode_kv_lens(model, quick)[:2]]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 5, "topk": 16, "valid": 9}),
                Case("test", "test", {"B": 1, "topk": 8, "valid": 8})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 7, "topk": 2048, "valid": 1500})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        b, topk, valid = p["B"], p["topk"], p["valid"]
        g = torch.Generator(device=device).manual_seed(seed)
        table = torch.full((b, topk), -1, dtype=torch.int32, device=device)
        counts = []
        for i in range(b):
            n = max(1, valid - (i * 37) % max(1, valid // 4)) if i else valid  # ragged, first row full
            where = torch.randperm(topk, generator=g, device=device)[:n]
            table[i, where] = torch.randperm(1 << 20, generator=g, device=device)[:n].to(torch.int32)
            counts.append(n)
        indptr = torch.zeros(b + 1, dtype=torch.int32, device=device)
        indptr[1:] = torch.cumsum(torch.tensor(counts, dtype=torch.int32, device=device), 0)
        return {"page_table_1": table, "kv_indptr": indptr, "nnz": sum(counts)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(inputs["nnz"], dtype=torch.int32, device=inputs["kv_indptr"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        table = inputs["page_table_1"]
        return table[table != -1].to(torch.int32)  # row-major order: row by row, in-row order kept

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "integer indices: exact")

    def flops(self, case: Case) -> float:
        return 0.0  # a prefix count and a scatter

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["B"] * p["topk"] * 4.0 + (p["B"] + 1) * 4.0 + p["B"] * p["valid"] * 4.0


SPEC = DsaValidKvIndicesSpec()
