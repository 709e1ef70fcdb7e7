"""MX block-scale swizzle (catalog row 71, vLLM `triton_mx_block_rearrange` -> `triton_scale_swizzle`,
model_executor/layers/quantization/qutlass_utils.py; `to_blocked(..., backend="triton")` feeds the MXFP4 / NVFP4
qutlass GEMMs their scale operands).

Math: the cuBLAS "block scaling factors" layout
(https://docs.nvidia.com/cuda/cublas/index.html#d-block-scaling-factors-layout).  The [R, C] row-major byte
matrix of scales is zero-padded to [PR, PC] = [ceil(R/128)*128, ceil(C/4)*4], cut into 128x4 tiles taken row of
tiles by row of tiles (tile (rb, cb) at flat offset (rb * PC/4 + cb) * 512), and inside a tile row r, column c
lands at (r % 32) * 16 + (r // 32) * 4 + c.  Output: the [PR, PC] uint8 tensor holding that flat order.

Inputs: e8m0 scale bytes (biased exponents 110..140, never 0, so an unwritten byte shows: the checker poisons an
integer buffer with 0).  Cases: activation scales of a linear layer's input, R = tokens, C = hidden_size / 32
(MX group 32).  The check is exact (tolerance 0).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.quantization._common import token_cases

MX_GROUP = 32


def padded_shape(rows: int, cols: int) -> tuple[int, int]:
    return -(-rows // 128) * 128, -(-cols // 4) * 4


def swizzle_reference(s: torch.Tensor) -> torch.Tensor:
    """[R, C] -> [PR, PC] in the block-scaling layout, by index arithmetic on the flat output."""
    rows, cols = s.shape
    pr, pc = padded_shape(rows, cols)
    padded = torch.zeros(pr, pc, dtype=s.dtype, device=s.device)
    padded[:rows, :cols] = s
    r = torch.arange(pr, device=s.device)[:, None]
    c = torch.arange(pc, device=s.device)[None, :]
    dest = ((r // 128) * (pc // 4) + c // 4) * 512 + (r % 128 % 32) * 16 + (r % 128 // 32) * 4 + c % 4
    flat = torch.empty(pr * pc, dtype=s.dtype, device=s.device)
    flat[dest.flatten()] = padded.flatten()
    return flat.view(pr, pc)


class MxBlockRearrangeSpec(KernelSpec):
    id = "mx_block_rearrange"
    category = "quantization"
    catalog_rows = (71,)
    token_dim = 'R'
    title = "MX block-scale swizzle into the cuBLAS 128x4 block-scaling layout"
    dtypes: ClassVar[tuple[str, ...]] = ("uint8",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        out = []
        for case in token_cases(model, quick, {}):
            p = case.params
            out.append(Case(case.model, case.regime, {"R": p["T"], "C": p["H"] // MX_GROUP}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"R": 7, "C": 13}), Case("test", "test", {"R": 200, "C": 8})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"R": 300, "C": 130})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "uint8":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: uint8")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        s = torch.randint(110, 141, (p["R"], p["C"]), generator=g, device=device).to(torch.uint8)
        return {"scales": s.contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        pr, pc = padded_shape(case.params["R"], case.params["C"])
        return torch.empty(pr, pc, dtype=torch.uint8, device=inputs["scales"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return swizzle_reference(inputs["scales"]).to(torch.float32)

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "exact byte permutation")

    def flops(self, case: Case) -> float:
        return 0.0

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        pr, pc = padded_shape(p["R"], p["C"])
        return p["R"] * p["C"] + pr * pc


SPEC = MxBlockRearrangeSpec()
