"""Helion port of the fused MoE router (catalog row 83; SGLang 0.5.23 `fused_moe_router_shim`,
kernels/ops/moe/router.py: `fused_moe_router_cudacore_kernel` / `fused_moe_router_tensorcore_kernel`).

    l = c * tanh(x @ Wr.T / c);  p = softmax(l);  out[t, e] = p[t, e] if e in top_k(l[t]) else 0
    x [T, H] bf16, Wr [E, H] fp32 -> out [T, E] fp32 (the dense form of (topk_weights, topk_ids))

One kernel: the router GEMM, soft-cap, softmax, top-k selection and the dense scatter are fused per tile of
tokens.  E is small (8..16), so the GEMM runs on CUDA cores in exact fp32 (no TF32): a [tokens, E, H-tile] fp32
accumulator collects products and is reduced over H once after the loop (no cross-lane reduction per step).
Memory-bound on x (T * H * 2 bytes; Wr is L2-resident).  Top-k: top_k rounds of row max, marking the winners.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most


@helion.kernel(static_shapes=False)
def moe_router_kernel(
    x: torch.Tensor,  # [T, H] bf16
    w: torch.Tensor,  # [E, H] fp32
    out: torch.Tensor,  # [T, E] fp32, written
    cap: float,  # logit soft-cap (> 0)
    top_k: hl.constexpr,
) -> None:
    T = x.size(0)
    H = hl.specialize(x.size(1))
    E = hl.specialize(w.size(0))
    block_h = hl.register_block_size(H)
    for tile_t in hl.tile(T):
        acc3 = hl.zeros([tile_t, E, block_h], dtype=torch.float32)
        for tile_h in hl.tile(H, block_size=block_h):
            xv = x[tile_t, tile_h].to(torch.float32)
            wv = w[:, tile_h]
            acc3 = acc3 + xv[:, None, :] * wv[None, :, :]
        # c * tanh(z / c) as c - 2c / (exp(2z / c) + 1): exact to ~1e-7 * c, and Triton's CPU interpreter lacks tanh
        logits = cap - 2.0 * cap / (torch.exp(torch.sum(acc3, dim=2) * (2.0 / cap)) + 1.0)
        mx = torch.amax(logits, dim=1)
        ex = torch.exp(logits - mx[:, None])
        probs = ex / torch.sum(ex, dim=1)[:, None]
        cur = logits
        keep = torch.zeros_like(probs)
        for _ in hl.static_range(top_k):
            best = torch.amax(cur, dim=1)
            hit = cur == best[:, None]
            keep = torch.where(hit, 1.0, keep)
            cur = torch.where(hit, float("-inf"), cur)
        out[tile_t, :] = probs * keep


def default_config(t: int, h: int, e: int) -> dict[str, Any]:
    """[H tile, token tile] (the registered H block comes first): 16 tokens (8 for E > 8) x 64 columns of x a
    step, 4 warps; decode shrinks the token tile to the batch."""
    bt = pow2_at_most(16 if e <= 8 else 8, t, floor=1)
    return {"block_sizes": [pow2_at_most(64, h, floor=16), bt], "num_warps": 4, "num_stages": 3}


def _single_token(config: helion.Config) -> helion.Config:
    """T = 1 is a specialized size-1 dim: its tile (block_sizes[1], after the registered H block) must be 1."""
    sizes = list(config.get("block_sizes", []))  # type: ignore[arg-type]
    if len(sizes) < 2 or sizes[1] == 1:
        return config
    return helion.Config(**{**dict(config), "block_sizes": [sizes[0], 1, *sizes[2:]]})


class HelionMoeRouter(HelionPort):
    kernel: ClassVar[str] = "moe_router"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = ("one kernel: fp32 CUDA-core router GEMM, soft-cap, softmax, top-k, dense "
                                        "scatter",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"moe_router_kernel": default_config(int(dims["T"]), int(dims["H"]), int(dims["E"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, w = inputs["x"], inputs["router_weight"]
        cap = float(case.params["cap"])
        if cap <= 0:
            raise ValueError("the port needs a positive soft-cap (Grok routing)")
        if tuple(out.shape) != (x.shape[0], w.shape[0]) or x.shape[1] != w.shape[1]:
            raise ValueError(f"bad shapes x {tuple(x.shape)} Wr {tuple(w.shape)} out {tuple(out.shape)}")
        adjust = _single_token if x.shape[0] == 1 else None
        return [Launch(moe_router_kernel, (x, w, out, cap, int(case.params["top_k"])), adjust=adjust)]


IMPL = HelionMoeRouter()

if __name__ == "__main__":
    check_main(IMPL)
