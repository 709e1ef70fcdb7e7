"""FlashInfer 0.7.2.post1 `flashinfer.page.get_batch_indices_positions` (launches the Triton
`flashinfer.triton.page.get_batch_indices_positions_kernel`), writing into the two rows of the bench buffer
through its preallocated-output arguments (it fills batch_indices with -1 first, as in production)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import FlashinferImpl

FI_MOD = "flashinfer.page"


class FlashinferBatchIndicesPositions(FlashinferImpl):
    kernel = "batch_indices_positions"
    dtypes = ("int32",)
    modules = (FI_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FI_MOD]
        indptr, lens, nnz = inputs["append_indptr"], inputs["seq_lens"], int(inputs["nnz"])
        batch_indices, positions = out[0], out[1]

        def fn() -> None:
            mod.get_batch_indices_positions(indptr, lens, nnz, batch_indices=batch_indices, positions=positions)

        notes = [*self.base_notes(), "launcher with preallocated batch_indices / positions (rows of the buffer)"]
        return Prepared(fn, {"config": {"grid": "(B,)", "step": 128},
                             "config_source": "launcher fixed (num_stages by arch)", "notes": "; ".join(notes)})


IMPLS = [FlashinferBatchIndicesPositions()]
