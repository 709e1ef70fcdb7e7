"""Sliding-window attention backward: MaxLSB/flash-attn2 @3f4892a `FlashAttention.backward(ctx, dO)`
(src/flash_attention/flash_attention.py; kernels `_attn_bwd_preprocess`, `_attn_bwd_dk_dv`, `_attn_bwd_dq` in
src/flash_attention/backward.py, catalog row 5).

prepare runs the upstream forward (`FlashAttention.forward` with a stand-in ctx, untimed), which saves Q, K, V,
O and the row log-sum-exp L exactly as training's forward pass would; the timed call is the static backward on
that ctx.  It allocates dQ, dK, dV itself (fp16, `torch.empty_like`), and the adapter copies them into the
spec's fp32 [3, B, H, T, D] output inside the timed call.  Tiles: the kernels' own `@triton.autotune` (preprocess
BLOCK 16/32; dk_dv and dq BLOCK 16 x 16, num_stages 3/4/7 x num_warps 2/4; key SEQ_LEN, HEAD_DIM).  Note the
upstream backward loops over every Q (resp. KV) block of the sequence and masks outside the window, so its work
grows with T^2, not T * W.  Shape limits as the forward adapter (upstream_adapters/attention/swa_attention.py).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention.swa_attention import AUTOTUNE_SOURCE, FlashAttn2Impl, SavedCtx


class FlashAttn2SwaBackward(FlashAttn2Impl):
    kernel = "swa_attention_bwd"

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        self.check_shape(inputs)
        fa = self.function()
        q, k, v, do, window = inputs["q"], inputs["k"], inputs["v"], inputs["do"], int(inputs["window"])
        if not do.is_contiguous() or do.stride() != q.stride():
            raise ValueError("flash-attn2 backward needs a contiguous dO with Q's strides")
        ctx = SavedCtx()
        fa.forward(ctx, q, k, v, window, "sliding_window")  # untimed: O and L saved on ctx, as in training

        def fn() -> None:
            dq, dk, dv = fa.backward(ctx, do)[:3]
            out[0].copy_(dq)
            out[1].copy_(dk)
            out[2].copy_(dv)

        notes = self.notes("upstream forward run once in prepare (untimed) to save O and the row LSE on a "
                           "stand-in ctx; FlashAttention.backward(ctx, dO) timed",
                           "returns new fp16 dQ, dK, dV: copied into the spec's fp32 output inside the timed call")
        # the saved O and LSE belong to the inputs: when the gate rewrites q/k/v, the forward runs again (untimed)
        return Prepared(fn, {"config": {}, "config_source": AUTOTUNE_SOURCE, "notes": notes},
                        relayout=lambda: fa.forward(ctx, q, k, v, window, "sliding_window"))


IMPLS = [FlashAttn2SwaBackward()]
