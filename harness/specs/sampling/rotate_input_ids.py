"""Rotate EAGLE draft-extend input ids (catalog row 58, SGLang `rotate_input_ids_kernel` via `rotate_input_ids`,
kernels/ops/speculative/multi_layer_eagle.py).

Math, for each sequence b with tokens ids[s_b : s_b + n_b] (s = extend_start_loc, n = extend_seq_lens) and its
newly sampled token t_b:

    ids'[s_b + i] = ids[s_b + i + 1]   for i < n_b - 1;     ids'[s_b + n_b - 1] = t_b

i.e. drop each sequence's first token, shift left by one and append the new token (the draft model's next
input).  Sequences are packed back to back; lengths are the accepted lengths + 1 after a verify step, 1..4 here
(3 speculative steps).

Shapes: input_ids [N] int64 (N = sum n_b); extend_start_loc, extend_seq_lens [B] int32; topk_index [B] int64;
out [N] int64.  The kernel works in place, so an impl copies input_ids into the output buffer, then rotates it.
The check is exact.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance

MAX_EXTEND = 4  # 3 speculative steps + 1


class RotateInputIdsSpec(KernelSpec):
    id = "rotate_input_ids"
    category = "sampling"
    catalog_rows = (58,)
    token_dim = 'B'
    title = "EAGLE draft-extend input-id rotation (shift left, append the new token) per sequence"
    dtypes: ClassVar[tuple[str, ...]] = ("int64",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("vocab_size"):
            return []
        v = int(model.get("vocab_size"))
        return [Case(model.name, "decode", {"B": b, "V": v}) for b in model.tokens("decode", quick=quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 7, "V": 1000}), Case("test", "test", {"B": 1, "V": 50})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 37, "V": 32000})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "int64":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: int64")
        p = case.params
        g = torch.Generator(device=device).manual_seed(seed)
        lens = torch.randint(1, MAX_EXTEND + 1, (p["B"],), generator=g, device=device, dtype=torch.int32)
        starts = (torch.cumsum(lens, 0) - lens).to(torch.int32)
        n = int(lens.sum())
        return {"input_ids": torch.randint(0, p["V"], (n,), generator=g, device=device),
                "extend_start_loc": starts, "extend_seq_lens": lens,
                "topk_index": torch.randint(0, p["V"], (p["B"],), generator=g, device=device)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["input_ids"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        ids = inputs["input_ids"].double()
        out = ids.clone()
        starts, lens = inputs["extend_start_loc"].long(), inputs["extend_seq_lens"].long()
        pos = torch.arange(ids.numel(), device=ids.device)
        seq = torch.repeat_interleave(torch.arange(lens.numel(), device=ids.device), lens)
        last = pos == starts[seq] + lens[seq] - 1
        shifted = torch.cat([ids[1:], ids[:1]])  # ids[i + 1]; the wrap-around entry is always a `last` slot
        out = torch.where(last, inputs["topk_index"].double()[seq], shifted)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "integer token ids: exact")

    def flops(self, case: Case) -> float:
        return 0.0

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        n = p["B"] * (MAX_EXTEND + 1) / 2  # expected packed length
        # contract minimum: ids read once, out written once, start / length / new token per sequence (not the
        # upstream's copy into out before its in-place rotate)
        return n * 8 * 2 + p["B"] * (4 + 4 + 8)


SPEC = RotateInputIdsSpec()
