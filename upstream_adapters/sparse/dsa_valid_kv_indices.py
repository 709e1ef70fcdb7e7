"""SGLang 0.5.23 `sglang.kernels.ops.attention.dsa.triton_kernel.get_valid_kv_indices` (its DSA backend's call:
page_table_1, kv_indptr, a preallocated kv_indices buffer, bs).  The bench buffer (exactly nnz long) is passed
as kv_indices: the kernel writes positions kv_indptr[b] + rank, all < nnz."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import SglangImpl

SGL_MOD = "sglang.kernels.ops.attention.dsa.triton_kernel"


class SglangDsaValidKvIndices(SglangImpl):
    kernel = "dsa_valid_kv_indices"
    dtypes = ("int32",)
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[SGL_MOD]
        table, indptr = inputs["page_table_1"], inputs["kv_indptr"]
        bs = table.shape[0]

        def fn() -> None:
            mod.get_valid_kv_indices(table, indptr, out, bs)

        return Prepared(fn, {"config": {"grid": "(bs,)", "topk": table.shape[1]},
                             "config_source": "launcher fixed", "notes": "; ".join(self.base_notes())})


IMPLS = [SglangDsaValidKvIndices()]
