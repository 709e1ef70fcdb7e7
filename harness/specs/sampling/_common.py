"""Shared pieces of the sampling specs: cases (one row of logits per sequence in a decode batch, the model's
vocabulary), random fp32 logits, and the request-state mapping vLLM's GPU model runner passes its sampling
kernels (row t reads its per-request parameters at state index mapping[t]).

The sampling-parameter kernels here are deterministic: they transform logits (temperature, min-p) or read
log-probabilities, so the contract is the transformed tensor, not a sample.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance

MAX_NUM_REQS = 1024  # vLLM's default max_num_seqs: the per-request parameter tables are this long


def sampling_cases(model: ModelShapes, quick: bool) -> list[Case]:
    """One case per decode batch size (sampling runs once per sequence per step), V = vocab_size."""
    if not model.has("vocab_size"):
        return []
    v = int(model.get("vocab_size"))
    return [Case(model.name, "decode", {"B": b, "V": v}) for b in model.tokens("decode", quick=quick)]


def random_logits(b: int, v: int, device: torch.device, g: torch.Generator) -> torch.Tensor:
    """fp32 [B, V] logits ~ N(0, 3^2): a realistic spread (a few tokens several nats above the bulk)."""
    return 3.0 * torch.randn(b, v, generator=g, device=device)


def state_mapping(b: int, device: torch.device, g: torch.Generator) -> torch.Tensor:
    """[B] int32 distinct request-state slots in 0..MAX_NUM_REQS-1, in scrambled order (as the persistent
    batch leaves them)."""
    return torch.randperm(MAX_NUM_REQS, generator=g, device=device)[:b].to(torch.int32)


# ------------------------------------------------------------------------------------- EAGLE verification batch
DRAFTS = 3  # draft tokens verified per request (num_speculative_tokens)


def eagle_cases(model: ModelShapes, quick: bool) -> list[Case]:
    if not model.has("vocab_size"):
        return []
    v = int(model.get("vocab_size"))
    return [Case(model.name, "decode", {"B": b, "V": v}) for b in model.tokens("decode", quick=quick)]


def eagle_batch(b: int, v: int, device: torch.device, seed: int) -> Inputs:
    """Verified batch: draft counts (0 or DRAFTS), sampled tokens with -1 for rejected slots, discard mask."""
    g = torch.Generator(device=device).manual_seed(seed)
    drafts = torch.where(torch.rand(b, generator=g, device=device) < 0.15, 0, DRAFTS).to(torch.int32)
    accepted = torch.minimum(torch.randint(0, DRAFTS + 1, (b,), generator=g, device=device), drafts.long())
    valid = accepted + 1  # the bonus / correction token is always sampled
    cols = torch.arange(DRAFTS + 1, device=device)[None, :]
    tokens = torch.randint(0, v, (b, DRAFTS + 1), generator=g, device=device)
    sampled = torch.where(cols < valid[:, None], tokens, torch.full_like(tokens, -1)).to(torch.int32)
    q_len = drafts.long() + 1
    qsl = torch.zeros(b + 1, dtype=torch.int64, device=device)
    qsl[1:] = torch.cumsum(q_len, 0)
    return {"sampled_token_ids": sampled.contiguous(),
            "discard_request_mask": torch.rand(b, generator=g, device=device) < 0.1,
            "backup_next_token_ids": torch.randint(0, v, (b,), generator=g, device=device).to(torch.int32),
            "valid_count": valid.to(torch.int32),
            "cu_num_draft_tokens": torch.cumsum(drafts, 0).to(torch.int32),
            "query_start_loc": qsl.to(torch.int32)}


class EagleSpec(KernelSpec):
    """Shared layout of the EAGLE bookkeeping specs (see eagle_prepare_next_token.py)."""

    category = "sampling"
    dtypes: ClassVar[tuple[str, ...]] = ("int32",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return eagle_cases(model, quick)

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 9, "V": 1000}), Case("test", "test", {"B": 1, "V": 50})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 37, "V": 32000})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "int32":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: int32")
        return eagle_batch(case.params["B"], case.params["V"], device, seed)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(2 * case.params["B"], dtype=torch.int32, device=inputs["query_start_loc"].device)

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "integer bookkeeping: exact")

    def flops(self, case: Case) -> float:
        return 0.0


class LogitsSpec(KernelSpec):
    """Shared frame of the specs that process fp32 logits [B, V] row by row with per-request state: the cases, the
    check shape (`CHECK_V` columns) and the seeded generator their inputs come from."""

    category = "sampling"
    dtypes: ClassVar[tuple[str, ...]] = ("fp32",)
    CHECK_V: ClassVar[int] = 5000

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return sampling_cases(model, quick)

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"B": 37, "V": self.CHECK_V})]

    def generator(self, dtype: str, device: torch.device, seed: int) -> torch.Generator:
        if dtype != "fp32":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: fp32")
        return torch.Generator(device=device).manual_seed(seed)
