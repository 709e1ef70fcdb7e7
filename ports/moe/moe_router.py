"""Helion port of the fused MoE router (catalog row 83; SGLang 0.5.23 `fused_moe_router_shim`,
kernels/ops/moe/router.py: `fused_moe_router_cudacore_kernel` / `fused_moe_router_tensorcore_kernel`).

    l = c * tanh(x @ Wr.T / c);  p = softmax(l);  out[t, e] = p[t, e] if e in top_k(l[t]) else 0
    x [T, H] bf16, Wr [E, H] fp32 -> out [T, E] fp32 (the dense form of (topk_weights, topk_ids))

The router GEMM runs on CUDA cores in exact fp32 (no TF32): E is small (8..16), so a [tokens, E, H-step] fp32
accumulator collects products and is reduced over H once per program (no cross-lane reduction per step).
Memory-bound on x (T * H * 2 bytes); Wr (E * H * 4) is re-read from L2 once per token tile, so token tiles stay
>= 16 rows wherever T allows.

`moe_router_logits` runs over a grid of (token tile, H chunk of `h_chunk` columns, a host key):

* `h_chunk` >= H (large T, where token tiles alone fill the GPU): one program per token tile does the whole row
  and the epilogue (soft-cap, softmax, top-k, dense write): a single launch.
* split (decode and mid-size T): each program writes its fp32 partial logits to a [S, T, E] scratch and
  `moe_router_topk` adds the S partials and runs the same epilogue.  Splits multiply the programs (bytes in
  flight) where T / tile is below 2 programs per SM; the scratch is small next to x (<= half of x + Wr).

The H loop carries `range_num_stages`: Triton software-pipelines a loop without a dot only when the loop itself
has a stage count (a kernel-wide num_stages does not), so the next steps' x and Wr tiles are in flight (cp.async
into shared memory) while the current one is multiplied.  Top-k: top_k rounds of row max, marking every logit
equal to the round's max (the spec's inputs have no near-ties).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most, rows_block, sm_count

#: accumulator elements per program (bt * E * bh): 64 fp32 registers per thread at 4 warps
ACC_ELEMS = 8192


def _route(z: torch.Tensor, cap: float, top_k: int) -> torch.Tensor:
    """Dense top-k softmax weights of the raw logits z [tokens, E], traced into both kernels.  Helion traces a
    helper's ops, not its subscripts: no `[:, None]` (unsqueeze) and no zeros_like (symbolic sizes) here."""
    # c * tanh(z / c) as c - 2c / (exp(2z / c) + 1): exact to ~1e-7 * c, and Triton's CPU interpreter lacks tanh
    logits = cap - 2.0 * cap / (torch.exp(z * (2.0 / cap)) + 1.0)
    ex = torch.exp(logits - torch.amax(logits, dim=1).unsqueeze(1))
    probs = ex / torch.sum(ex, dim=1).unsqueeze(1)
    cur, kept = logits, None
    for _ in range(top_k):  # every logit equal to the round's max is kept (ties: the spec draws none)
        hit = cur == torch.amax(cur, dim=1).unsqueeze(1)
        kept = hit if kept is None else kept | hit
        cur = torch.where(hit, float("-inf"), cur)
    return torch.where(kept, probs, 0.0)


@helion.kernel(static_shapes=False)
def moe_router_logits(
    x: torch.Tensor,  # [T, H] bf16
    w: torch.Tensor,  # [E, H] fp32
    ws: torch.Tensor,  # [S, T, E] fp32 partial logits, written when split (h_chunk < H); else unused
    out: torch.Tensor,  # [T, E] fp32, written when not split (h_chunk >= H)
    cap: float,  # logit soft-cap (> 0)
    top_k: hl.constexpr,
    h_chunk: hl.constexpr,  # H columns per program, dividing H (>= H: no split)
) -> None:
    T = x.size(0)
    H = hl.specialize(x.size(1))
    E = hl.specialize(w.size(0))
    block_h = hl.register_block_size(min(H, h_chunk))
    for tile_t, outer_h in hl.tile([T, H], block_size=[None, h_chunk]):
        acc3 = hl.zeros([tile_t, E, block_h], dtype=torch.float32)
        for tile_h in hl.tile(outer_h.begin, outer_h.end, block_size=block_h):
            xv = x[tile_t, tile_h].to(torch.float32)
            wv = w[:, tile_h]
            acc3 = acc3 + xv[:, None, :] * wv[None, :, :]
        z = torch.sum(acc3, dim=2)
        if h_chunk >= H:
            out[tile_t, :] = _route(z, cap, top_k)
        else:
            ws[outer_h.id, tile_t, :] = z


@helion.kernel(static_shapes=False)
def moe_router_topk(
    ws: torch.Tensor,  # [S, T, E] fp32 partial logits
    out: torch.Tensor,  # [T, E] fp32, written
    cap: float,
    top_k: hl.constexpr,
) -> None:
    hl.specialize(ws.size(0))
    hl.specialize(ws.size(2))
    hl.specialize(out.size(1))
    for tile_t in hl.tile(out.size(0)):
        out[tile_t, :] = _route(torch.sum(ws[:, tile_t, :], dim=0), cap, top_k)


def logits_config(t: int, h: int, e: int) -> dict[str, Any]:
    """Host key h_chunk + [H step bh, token tile bt] (the registered H block comes first) + the H loop's stages.

    The [bt, E, bh] fp32 accumulator holds ACC_ELEMS (64 registers a thread at 4 warps; ~95 in all, so 5
    programs fit an SM).  bt: 16 tokens (Wr's L2 re-reads then equal x's bytes), the batch if smaller; bh fills
    the accumulator (64 at E = 8, bt = 16), halved (not below 64) while a small batch has < 4 H steps per SM to
    split.  h_chunk: the whole row when the token tiles give >= 2 programs per SM (T >= 4224 at grok-2's E = 8);
    else H cut into equal chunks for <= 4 programs per SM (one resident wave, no tail), the fp32 partials
    (written and read back) kept within half the x + Wr bytes.  4 stages on the H loop: the next 3 steps' x and
    Wr tiles are in flight (cp.async) behind the one multiplied, ~6 KB of x a program at [16, 64]."""
    sms = sm_count()
    bt = pow2_at_most(16, t, floor=1)
    tiles = math.ceil(t / bt)
    bh = min(512, pow2_at_most(max(16, ACC_ELEMS // (bt * e)), h, floor=16))
    bh = fill_sms(bh, min(bh, 64), lambda b: tiles * math.ceil(h / b), per_sm=4)
    steps = math.ceil(h / bh)
    chunk = h
    if tiles < 2 * sms:
        cap = (t * h * 2 + e * h * 4) // (2 * 8 * t * e)
        splits = max(1, min(4 * sms // tiles, steps, cap))
        chunk = even_chunk(h, bh * math.ceil(steps / splits))
    return {"h_chunk": chunk, "block_sizes": [bh, bt], "num_warps": 4, "num_stages": 1, "range_num_stages": [0, 4]}


def even_chunk(h: int, chunk: int) -> int:
    """The largest divisor of H that is <= chunk: equal chunks (eager interpret mode clamps the last tile, which
    must not be narrower than the H step; on the GPU, equal programs)."""
    return max(d for d in range(1, min(h, chunk) + 1) if h % d == 0)


def topk_config(t: int, splits: int, e: int) -> dict[str, Any]:
    """`moe_router_topk`: token tiles of up to 32, fewer so the [S, tile, E] partials it loads stay within 4096
    fp32 (32 registers a thread at 4 warps)."""
    fit = max(1, 4096 // (splits * e))
    return {"block_sizes": [pow2_at_most(min(32, 1 << (fit.bit_length() - 1)), t, floor=1)], "num_warps": 4}


class HelionMoeRouter(HelionPort):
    kernel: ClassVar[str] = "moe_router"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    host_keys: ClassVar[tuple[str, ...]] = ("h_chunk",)
    notes: ClassVar[tuple[str, ...]] = ("exact fp32 CUDA-core router GEMM with the H loop software-pipelined; "
                                        "soft-cap, softmax, top-k, dense scatter fused; H split into chunks "
                                        "(fp32 partials + one small top-k kernel) where token tiles < 2 per SM",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        t, h, e = int(dims["T"]), int(dims["H"]), int(dims["E"])
        logits = logits_config(t, h, e)
        return {moe_router_logits.name: logits, moe_router_topk.name: topk_config(t, -(-h // logits["h_chunk"]), e)}

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        if name != moe_router_logits.name:
            return [{}]
        h = int(dims["H"])
        chunks = {h, *(c for c in (256, 512, 1024, 2048) if c < h)}
        return [{"h_chunk": c} for c in sorted(chunks)]

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, w = inputs["x"], inputs["router_weight"]
        cap, top_k = float(case.params["cap"]), int(case.params["top_k"])
        if cap <= 0:
            raise ValueError("the port needs a positive soft-cap (Grok routing)")
        t, h = x.shape
        if tuple(out.shape) != (t, w.shape[0]) or h != w.shape[1]:
            raise ValueError(f"bad shapes x {tuple(x.shape)} Wr {tuple(w.shape)} out {tuple(out.shape)}")
        chunk = even_chunk(h, int(configs[moe_router_logits.name]["h_chunk"]))
        # T = 1 is a specialized size-1 dim: its token tile (after the registered H step) must be 1
        if chunk >= h:
            return [Launch(moe_router_logits, (x, w, out[None], out, cap, top_k, h), adjust=rows_block(t, index=1))]
        ws = torch.empty(math.ceil(h / chunk), t, w.shape[0], dtype=torch.float32, device=x.device)
        return [Launch(moe_router_logits, (x, w, ws, out, cap, top_k, chunk), adjust=rows_block(t, index=1)),
                Launch(moe_router_topk, (ws, out, cap, top_k), adjust=rows_block(t))]


IMPL = HelionMoeRouter()

if __name__ == "__main__":
    check_main(IMPL)
