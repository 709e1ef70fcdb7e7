"""Helion port of combined top-k / top-p masking (catalog row 48; vLLM `apply_top_k_top_p_triton`,
v1/sample/ops/topk_topp_triton.py).

    tau_k = k-th largest logit (all kept when k >= V);  K = {x >= tau_k},  e = exp(x - max), Z = sum_K e
    tau_p = largest t with sum_{K, x >= t} e >= p * Z  (the first sorted token whose inclusive mass reaches p)
    out[b, v] = logits[b, v] if logits[b, v] >= max(tau_k, tau_p) else FILTERED (-1e4)   [B, V] fp32 -> [B, V] fp32

Threshold search instead of a sort: one program per row bisects the value range (ITERS halvings of
[row min, row max + 1], i.e. below one fp32 ulp at the logits' scale), first on the count of logits >= t (top-k),
then on their softmax mass (top-p); every bisection step is a streaming pass over the row, and the last pass
writes the masked row straight into the output (no copy of the logits first).  This is the correctness-first
version: ~2 * ITERS + 3 passes per row, so it is far from the bandwidth roofline at large B * V.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from harness.specs.sampling.min_p import FILTERED
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most

ITERS = 32  # bisection steps: range ~40 / 2^32 ~ 1e-8 < fp32 ulp of logits of O(1..10)


@helion.kernel(static_shapes=False)
def top_k_top_p_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    k: torch.Tensor,  # [B] int32 (>= V: top-k off)
    p: torch.Tensor,  # [B] fp32 (>= 1: top-p off)
    out: torch.Tensor,  # [B, V] fp32, written
) -> None:
    B, V = logits.size(0), logits.size(1)
    for tile_b in hl.tile(B, block_size=1):
        kk = k[tile_b]
        pp = p[tile_b]
        hi = hl.full([tile_b], float("-inf"), dtype=torch.float32)
        lo = hl.full([tile_b], float("inf"), dtype=torch.float32)
        for tile_v in hl.tile(V):
            x = logits[tile_b, tile_v]
            hi = torch.maximum(hi, torch.amax(x, dim=1))
            lo = torch.minimum(lo, torch.amin(x, dim=1))
        row_max = hi
        hi = hi + 1.0
        # top-k: largest t with #{x >= t} >= k
        for _ in hl.grid(ITERS):
            mid = (lo + hi) * 0.5
            cnt = hl.zeros([tile_b], dtype=torch.float32)  # exact below 2^24
            for tile_v in hl.tile(V):
                x = logits[tile_b, tile_v]
                cnt = cnt + torch.sum((x >= mid[:, None]).to(torch.float32), dim=1)
            ok = cnt >= kk.to(torch.float32)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        tau_k = torch.where(kk >= V, torch.full_like(lo, float("-inf")), lo)
        z = hl.zeros([tile_b], dtype=torch.float32)
        for tile_v in hl.tile(V):
            x = logits[tile_b, tile_v]
            e = torch.exp(x - row_max[:, None])
            z = z + torch.sum(torch.where(x >= tau_k[:, None], e, torch.zeros_like(e)), dim=1)
        target = pp * z
        # top-p: largest t >= tau_k with sum_{x >= t} e >= p * Z
        lo = tau_k
        hi = row_max + 1.0
        lo = torch.where(lo == float("-inf"), hi - 1.0e4, lo)
        for _ in hl.grid(ITERS):
            mid = (lo + hi) * 0.5
            mass = hl.zeros([tile_b], dtype=torch.float32)
            for tile_v in hl.tile(V):
                x = logits[tile_b, tile_v]
                e = torch.exp(x - row_max[:, None])
                mass = mass + torch.sum(torch.where(x >= mid[:, None], e, torch.zeros_like(e)), dim=1)
            ok = mass >= target
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        tau = torch.where(pp >= 1.0, tau_k, torch.maximum(lo, tau_k))
        for tile_v in hl.tile(V):
            x = logits[tile_b, tile_v]
            out[tile_b, tile_v] = torch.where(x >= tau[:, None], x, torch.full_like(x, FILTERED))


class HelionTopKTopP(HelionPort):
    kernel: ClassVar[str] = "top_k_top_p"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp32",)
    notes: ClassVar[tuple[str, ...]] = ("per-row value bisection (count for top-k, softmax mass for top-p), masked row "
                                        "written straight to out (no copy); correctness-first, many passes",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        bv = pow2_at_most(4096, int(dims["V"]), floor=16)
        return {"top_k_top_p_kernel": {"block_sizes": [bv] * 5, "num_warps": 8 if bv >= 4096 else 4}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        return [Launch(top_k_top_p_kernel, (inputs["logits"], inputs["k"], inputs["p"], out))]


IMPL = HelionTopKTopP()

if __name__ == "__main__":
    check_main(IMPL)
