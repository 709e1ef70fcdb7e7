"""The MX block-scale swizzle contract: index-arithmetic reference vs a reshape/permute formulation of the cuBLAS
layout (128x4 tiles, each as 4 row groups of 32 interleaved), exact; a plain padded copy fails."""

from __future__ import annotations

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.specs.quantization.mx_block_rearrange import SPEC, padded_shape

CPU = torch.device("cpu")


def blocked(s: torch.Tensor) -> torch.Tensor:
    rows, cols = s.shape
    pr, pc = padded_shape(rows, cols)
    padded = torch.zeros(pr, pc, dtype=s.dtype)
    padded[:rows, :cols] = s
    tiles = padded.view(pr // 128, 128, pc // 4, 4).permute(0, 2, 1, 3)  # [rb, cb, 128, 4]
    # row r = 32 * q + i of a tile goes to (i, q): 32 lines of 16 bytes, q-major inside a line
    tiles = tiles.reshape(-1, 4, 32, 4).transpose(1, 2).reshape(-1)
    return tiles.view(pr, pc)


def test_reference_matches_reshape_formulation_and_rejects_plain_copy():
    tol = SPEC.tolerance("uint8")
    for case in SPEC.test_cases() + SPEC.check_cases():
        inp = SPEC.make_inputs(case, "uint8", CPU, seed=1)
        ref = SPEC.reference(inp, case, "uint8")
        assert torch.equal(ref, blocked(inp["scales"]).float())
        assert SPEC.make_output(inp, case, "uint8").shape == ref.shape
        plain = torch.zeros(ref.shape)
        plain[:case.params["R"], :case.params["C"]] = inp["scales"].float()
        assert not compare(plain, ref, tol).ok
        assert (inp["scales"] > 0).all()


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)[0].params == {"R": 1, "C": 128}
