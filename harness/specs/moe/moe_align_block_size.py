"""MoE routing alignment (catalog row 44, SGLang `sglang/test/kernels/moe_align.py` `moe_align_block_size_triton`,
the four-stage Triton version SGLang keeps as the reference for its CUDA op).

Math: the contract of harness/specs/moe/routing.py `align_block_size`: flatten topk_ids [M, top_k] into slots
s = token * top_k + k, sort the slots by expert, pad each expert's run to a multiple of the block size B with the
pad value M * top_k, and list each block's expert.

Output contract: ONE int32 buffer, the three upstream outputs back to back, over their maximal sizes
(P = M * top_k + E * (B - 1) slots, P / B blocks, rounded up):

    out[0 : P]            sorted_token_ids; entries past num_tokens_post_pad hold the pad value M * top_k
    out[P : P + P/B]      expert_ids per block; entries past the last used block hold -1
    out[-1]               num_tokens_post_pad

Within one expert the slots are in ascending order (a stable sort).  That is a contract choice, not a loss of
generality for the upstream: SGLang's stage 4 gives program i the slot range [i * t, (i + 1) * t) and places its
slots after those of programs < i, in increasing order, so its layout is exactly the stable one.  An impl
built on atomics must sort within experts to meet it.  The impl fills the pad values itself (two fills in the
timed call, as vLLM's python wrapper fills sorted_ids before its kernel).  The check is exact (tolerance 0).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.moe.routing import align_block_size


def layout_sizes(m: int, top_k: int, e: int, block: int) -> tuple[int, int]:
    """(P, number of block slots) of the output buffer."""
    p = m * top_k + e * (block - 1)
    return p, math.ceil(p / block)


def split_output(out: torch.Tensor, m: int, top_k: int, e: int, block: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Views (sorted_token_ids [P], expert_ids [P/B], num_tokens_post_pad [1]) into the contract's buffer."""
    p, nb = layout_sizes(m, top_k, e, block)
    return out[:p], out[p:p + nb], out[p + nb:]


class MoeAlignBlockSizeSpec(KernelSpec):
    id = "moe_align_block_size"
    category = "moe"
    catalog_rows = (44,)
    token_dim = 'M'
    title = "MoE routing alignment: expert-sorted, block-padded slot layout"
    dtypes: ClassVar[tuple[str, ...]] = ("int32",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("moe"):
            return []
        e, top_k = int(model.get("moe.num_experts")), int(model.get("moe.top_k"))
        out = []
        for regime, block in (("decode", 16), ("prefill", 64)):  # typical tuned BLOCK_SIZE_M per regime
            for m in model.tokens(regime, quick=quick):
                out.append(Case(model.name, regime, {"M": m, "E": e, "top_k": top_k, "B": block}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"M": 7, "E": 6, "top_k": 2, "B": 4}),
                Case("test", "test", {"M": 1, "E": 8, "top_k": 3, "B": 16})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"M": 37, "E": 64, "top_k": 6, "B": 16})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "int32":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: int32")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        logits = torch.randn(p["M"], p["E"], generator=g, device=device)
        ids = torch.topk(logits, p["top_k"], dim=-1).indices  # distinct experts per token, as routers give
        return {"topk_ids": ids.to(torch.int32).contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        size, nb = layout_sizes(p["M"], p["top_k"], p["E"], p["B"])
        return torch.empty(size + nb + 1, dtype=torch.int32, device=inputs["topk_ids"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        ids = inputs["topk_ids"]
        sorted_ids, expert_ids, ntp = align_block_size(ids, p["E"], p["B"])
        ref = torch.empty(self.make_output(inputs, case, dtype).shape, dtype=torch.float64, device=ids.device)
        s_out, e_out, n_out = split_output(ref, p["M"], p["top_k"], p["E"], p["B"])
        s_out.fill_(ids.numel())
        s_out[:sorted_ids.numel()] = sorted_ids.double()
        e_out.fill_(-1)
        e_out[:expert_ids.numel()] = expert_ids.double()
        n_out.copy_(ntp.double())
        return ref

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "integer layout: exact")

    def flops(self, case: Case) -> float:
        return 0.0

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        size, nb = layout_sizes(p["M"], p["top_k"], p["E"], p["B"])
        return p["M"] * p["top_k"] * 4 + (size + nb + 1) * 4


SPEC = MoeAlignBlockSizeSpec()
