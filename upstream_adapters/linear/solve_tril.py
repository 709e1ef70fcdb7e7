"""Upstream blockwise triangular inverse: fla 0.6.0 `solve_tril` (row 26) and vLLM 0.33.0's copy.

    fla   fla.ops.utils.solve_tril.solve_tril (dispatch-wrapped; FLA_DISABLE_BACKEND_DISPATCH=1 keeps the Triton path)
    vllm  vllm.third_party.flash_linear_attention.ops.solve_tril.solve_tril

Both varlen with precomputed chunk indices, output in the model dtype (as vLLM's GDN forward requests it); the
launchers allocate the result (zeros, then the kernel), the copy into the harness buffer is timed.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.linear._common import torch_dtype
from harness.specs.linear.chunk_scaled_dot_kkt import CHUNK
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.utils.solve_tril"
FLA_INDEX_MOD = "fla.ops.utils.index"
VLLM_MOD = "vllm.third_party.flash_linear_attention.ops.solve_tril"
VLLM_INDEX_MOD = "vllm.third_party.flash_linear_attention.ops.index"

KERNEL = "solve_tril"


class FlaSolveTril(UpstreamImpl):
    kernel = KERNEL
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD, FLA_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[FLA_MOD].solve_tril
        cu = inputs["cu_seqlens"]
        args: dict[str, Any] = dict(A=inputs["A"], cu_seqlens=cu, output_dtype=torch_dtype(dtype),
                                    chunk_indices=mods[FLA_INDEX_MOD].prepare_chunk_indices(cu, CHUNK,
                                                                                            cu_seqlens_cpu=cu.cpu()))

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {"BT": CHUNK}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("result copied into the harness buffer")})


class VllmSolveTril(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD, VLLM_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[VLLM_MOD].solve_tril
        cu = inputs["cu_seqlens"].to(torch.int32)
        args: dict[str, Any] = dict(A=inputs["A"], cu_seqlens=cu, output_dtype=torch_dtype(dtype),
                                    chunk_indices=mods[VLLM_INDEX_MOD].prepare_chunk_indices(cu, CHUNK))

        def fn() -> None:
            out.copy_(launch(**args))

        precision = getattr(mods[VLLM_MOD], "FLA_TRIL_PRECISION", None)
        return Prepared(fn, {"config": {"BT": CHUNK, "DOT_PRECISION": precision},
                             "config_source": "vllm autotune (in-kernel)",
                             "notes": self.notes("result copied into the harness buffer")})


IMPLS = [FlaSolveTril(), VllmSolveTril()]
