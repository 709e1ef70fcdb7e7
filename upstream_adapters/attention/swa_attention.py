"""Sliding-window attention forward: MaxLSB/flash-attn2 @3f4892a `src/flash_attention/flash_attention.py`
`FlashAttention.forward(ctx, Q, K, V, WINDOW_SIZE, attn_mode="sliding_window")` (kernel `_attn_fwd` in
src/flash_attention/forward.py, catalog row 4).

The adapter calls the autograd Function's static `forward` with a small stand-in ctx (it only records what the
backward needs), so no autograd graph is built; `forward` allocates O itself (`torch.empty_like(Q)`) and the
adapter copies it into the spec's output (one fp16 copy inside the timed call).  Tiles come from the kernel's own
`@triton.autotune` (BLOCK 16 x 16, num_stages 3/4/7 x num_warps 2/4, key SEQ_LEN, HEAD_DIM).  The kernel has no
bounds masks: T must be a multiple of 32 (16-row Q/KV tiles; the backward's preprocess may pick 32), D a power of
two >= 16, and 32 <= W <= T (the upstream test's stated limits); other shapes are refused in prepare.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

FA2_MOD = "src.flash_attention.flash_attention"
AUTOTUNE_SOURCE = "upstream @triton.autotune (BLOCK 16x16; num_stages 3/4/7 x num_warps 2/4; key SEQ_LEN, HEAD_DIM)"


class SavedCtx:
    """What FlashAttention.forward writes to its autograd ctx, kept for a direct FlashAttention.backward call."""

    saved_tensors: tuple[torch.Tensor, ...] = ()

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        self.saved_tensors = tensors


def shape_reason(q: torch.Tensor, window: int) -> str | None:
    _, _, t, d = q.shape
    if t % 32 or t < 64:
        return f"flash-attn2 tiles have no bounds masks: T must be a multiple of 32 and >= 64 (got {t})"
    if d < 16 or d & (d - 1):
        return f"flash-attn2 needs a power-of-two head dim >= 16 (got {d})"
    if not 32 <= window <= t:
        return f"flash-attn2 sliding window needs 32 <= W <= T (got W={window}, T={t})"
    return None


class FlashAttn2Impl(UpstreamImpl):
    provider = "flash-attn2"
    package = "flash-attn2"
    modules = (FA2_MOD,)
    dtypes: ClassVar[tuple[str, ...]] = ("fp16",)

    def function(self) -> Any:
        return self.mod(FA2_MOD).FlashAttention

    def check_shape(self, inputs: Inputs) -> None:
        reason = shape_reason(inputs["q"], int(inputs["window"]))
        if reason:
            raise ValueError(reason)
        if not all(inputs[n].is_contiguous() for n in ("q", "k", "v")):
            raise ValueError("flash-attn2 needs Q, K, V with identical (contiguous) strides")


class FlashAttn2SwaForward(FlashAttn2Impl):
    kernel = "swa_attention"

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        self.check_shape(inputs)
        fa = self.function()
        q, k, v, window = inputs["q"], inputs["k"], inputs["v"], int(inputs["window"])

        def fn() -> None:
            out.copy_(fa.forward(SavedCtx(), q, k, v, window, "sliding_window"))

        notes = self.notes("FlashAttention.forward called directly with a stand-in ctx (no autograd graph)",
                           "returns a new O: copied into the spec's output inside the timed call",
                           "scale D^-0.5 fixed by the upstream")
        return Prepared(fn, {"config": {}, "config_source": AUTOTUNE_SOURCE, "notes": notes})


IMPLS = [FlashAttn2SwaForward()]
