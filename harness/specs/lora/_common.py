"""Shared pieces of the multi-LoRA specs (punica-style batched LoRA): cases, the token -> adapter mapping, and
the per-token math both specs are written from.

A batch of T tokens comes from requests that each use one of L resident adapters or none (-1: the base
model only).  Requests are contiguous runs of tokens, as the scheduler lays them out.
"""

from __future__ import annotations

import torch

from harness.shapes import ModelShapes
from harness.spec import Case

RANKS = (16, 64)  # common served adapter ranks
MAX_LORAS = 4  # resident adapters (vLLM --max-loras default is 1; multi-LoRA serving runs a few)
SCALE = 0.5  # alpha / rank of the adapters (any non-trivial value: the kernels apply it)


def lora_cases(model: ModelShapes, quick: bool) -> list[Case]:
    """LoRA on a layer whose input and output width is hidden_size (o_proj / down_proj output side), one slice,
    every decode and prefill token count, ranks 16 and 64 (quick: 16 only)."""
    if not model.has("hidden_size"):
        return []
    h = int(model.get("hidden_size"))
    ranks = RANKS[:1] if quick else RANKS
    return [Case(model.name, regime, {"T": t, "H": h, "N": h, "r": r, "L": MAX_LORAS, "S": 1})
            for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick) for r in ranks]


def token_lora_mapping(t: int, num_loras: int, device: torch.device, g: torch.Generator) -> torch.Tensor:
    """[T] int32 adapter id per token in -1..L-1: runs of 1..8 tokens (requests) with random ids; when T > 1 at
    least one run uses the base model (-1) and at least one an adapter."""
    ids = torch.empty(t, dtype=torch.int32)
    pos = 0
    cpu = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device)))
    while pos < t:
        n = int(torch.randint(1, 9, (1,), generator=cpu))
        ids[pos:pos + n] = int(torch.randint(-1, num_loras, (1,), generator=cpu))
        pos += n
    if t > 1:
        ids[0], ids[-1] = -1, num_loras - 1
    else:
        ids[0] = 0
    return ids.to(device)


def shrink_math(x: torch.Tensor, lora_a: torch.Tensor, mapping: torch.Tensor, scale: float) -> torch.Tensor:
    """out[s, t] = scale * lora_a[s, mapping[t]] @ x[t] (0 where mapping[t] == -1); lora_a [S, L, r, H]; fp32."""
    s_, _, r, _ = lora_a.shape
    out = torch.zeros(s_, x.shape[0], r, dtype=torch.float32, device=x.device)
    for lora in torch.unique(mapping).tolist():
        if lora < 0:
            continue
        rows = (mapping == lora).nonzero()[:, 0]
        for s in range(s_):
            out[s, rows] = scale * (x[rows].float() @ lora_a[s, lora].float().t())
    return out


def expand_math(buf: torch.Tensor, lora_b: torch.Tensor, mapping: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """y = base + concat_s(buf[s, t] @ lora_b[s, mapping[t]].T) (base only where mapping[t] == -1); lora_b
    [S, L, N, r]; fp32."""
    s_, _, n, _ = lora_b.shape
    out = base.float().clone()
    for lora in torch.unique(mapping).tolist():
        if lora < 0:
            continue
        rows = (mapping == lora).nonzero()[:, 0]
        for s in range(s_):
            out[rows, s * n:(s + 1) * n] += buf[s, rows].float() @ lora_b[s, lora].float().t()
    return out
