"""Shared pieces of the Native Sparse Attention (NSA) specs: per-GPU heads and the paper's branch sizes.

NSA (Yuan et al. 2025, arXiv:2502.11089) runs three attention branches over GQA heads: compressed (queries attend
to one pooled key/value per `kernel_size`-token window, stride `kernel_stride`), selected (each KV-head group's
top-n blocks of `block_size` tokens) and a sliding window.  The paper's sizes (section 4.1): kernel_size 32,
stride 16, selection block 64, 16 selected blocks, GQA groups of 16 query heads.

No shipped model YAML runs NSA, so the specs apply it to each GQA model's attention heads.  The selection is
shared by a whole KV-head group (its importance score sums the group's heads), so a GPU holds whole groups:
max(1, Hkv / tp) KV heads and G = Hq / Hkv query heads for each (not vLLM's split of a group across GPUs).
"""

from __future__ import annotations

from harness.shapes import ModelShapes
from harness.specs.attention._common import Heads

KERNEL_SIZE = 32  # compression window l
KERNEL_STRIDE = 16  # compression stride d
BLOCK_SIZE = 64  # selection block l'
TOP_N = 16  # selected blocks per query token and KV head
MAX_SEQ = 8192  # prefill sequences of at most 8K tokens (one sequence per case)


def nsa_heads(model: ModelShapes) -> Heads | None:
    """Per-GPU heads of NSA applied to a GQA model (whole KV-head groups per GPU), or None without GQA."""
    if model.get("attention.kind", None) != "gqa":
        return None
    keys = ("attention.num_q_heads", "attention.num_kv_heads", "attention.head_dim")
    if not all(model.has(k) for k in keys):
        return None
    hq, hkv, d = (int(model.get(k)) for k in keys)
    if hq % hkv:
        return None
    kv = max(1, hkv // model.tp)
    return Heads(q=kv * (hq // hkv), kv=kv, head_dim=d)


def prefill_lengths(model: ModelShapes, quick: bool) -> list[int]:
    """Prefill token counts of the model that fit one sequence of at most MAX_SEQ tokens."""
    return [t for t in model.tokens("prefill", quick=quick) if t <= MAX_SEQ]
