"""Blockwise triangular inverse (I + A)^-1 (catalog row 26: fla `solve_tril`, fla/ops/utils/solve_tril.py, moved
from solve.py; vLLM 0.33.0's copy vllm/third_party/flash_linear_attention/ops/solve_tril.py).

For every 64-token chunk of every packed sequence and head, A's chunk block is strictly lower triangular and the
kernel returns the inverse of I + A (16x16 diagonal inverses merged to 64x64), as the WY step of the chunked
gated delta rule needs it.

Shapes: A [1, L, HV, 64] fp32, built from the kkt math of a Gated DeltaNet prefill (beta k k^T e^{g_i - g_j},
unit keys: the domain the GDN pipeline feeds it); cu_seqlens [N + 1]; out [1, L, HV, 64] in the model dtype, as
vLLM's chunk_gated_delta_rule_fwd requests it (output_dtype=k.dtype).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import chunk_kkt_reference, chunk_solve_reference, torch_dtype
from harness.specs.linear.chunk_scaled_dot_kkt import CHUNK, gdn_chunk_inputs, gdn_subop_cases


class SolveTrilSpec(KernelSpec):
    id = "solve_tril"
    category = "linear"
    catalog_rows = (26,)
    token_dim = 'T'
    title = "Blockwise (I + A)^-1 of strictly lower-triangular 64x64 chunk blocks"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)  # output dtype; A is fp32

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return gdn_subop_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 70, "N": 2, "H": 1, "HV": 2, "K": 8}),
                Case("test", "test", {"T": 5, "N": 1, "H": 2, "HV": 2, "K": 4})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 150, "N": 2, "H": 2, "HV": 4, "K": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        src = gdn_chunk_inputs(case, dtype, device, seed)
        a = chunk_kkt_reference(src["k"], src["beta"], src["g"], src["cu_seqlens"], CHUNK)
        return {"A": a, "cu_seqlens": src["cu_seqlens"]}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(inputs["A"].shape, dtype=torch_dtype(dtype), device=inputs["A"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return chunk_solve_reference(inputs["A"], inputs["cu_seqlens"], CHUNK)

    def tolerance(self, dtype: str) -> Tolerance:
        # The unit diagonal dominates ||ref|| (off-diagonal mass ~0.2 of it), so the bound is tight: bf16 output
        # rounding measures ~5e-5 here, fp32 / TF32 block merges ~2e-4.  Dropping the A^2.. terms (I - A) or
        # scaling A gives > 1e-2.
        return Tolerance(5e-3, "bf16 output of fp32 block inverses (TF32 dots allowed); unit diagonal dominates")

    def flops(self, case: Case) -> float:
        """Forward substitution per chunk and head: ~C^3 / 3 multiply-adds."""
        p = case.params
        chunks = p["N"] * -(-p["T"] // CHUNK)
        return float(chunks * p["HV"] * 2 * CHUNK ** 3 / 3)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elems = p["N"] * p["T"] * p["HV"] * CHUNK
        return float(elems * (4 + torch_dtype(dtype).itemsize))


SPEC = SolveTrilSpec()
