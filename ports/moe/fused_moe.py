"""Helion port of the fused MoE experts: gate-up GEMM + SiLU-and-mul, down GEMM with router weight, top-k sum.

Matches vLLM 0.33.0 `fused_experts` (vllm/model_executor/layers/fused_moe/fused_moe.py: `fused_moe_kernel`
launched twice around `silu_and_mul`, then `moe_sum`) and SGLang 0.5.23 `fused_moe_kernel`
(python/sglang/srt/layers/moe/fused_moe_triton/).  Written from the math of `harness/specs/moe/fused_moe.py`:

    out[m] = sum_j w[m,j] * ( silu(h[m] @ W1[e,:N].T) * (h[m] @ W1[e,N:].T) ) @ W2[e].T,   e = ids[m,j]

Shapes: hidden_states [M, K] bf16; w1 [E, 2N, K] (gate rows, then up rows); w2 [E, K, N]; topk_weights
[M, top_k] fp32; topk_ids [M, top_k] int32; out [M, K] bf16.  fp8_w8a8_block128: w1/w2 float8_e4m3fn with
fp32 scales w1_scale [E, ceil(2N/128), ceil(K/128)], w2_scale [E, ceil(K/128), ceil(N/128)]; activations
quantized on the fly per token and group of 128 (scale = amax / 448).

Kernels (compiled in the untimed `prepare`, which also builds the routing with the shared `align_block_size`
layout, one per block_m; the timed callable only launches them):

* `moe_gate_up`   grid (sorted-slot blocks of `block_m`) x (N tiles).  A block belongs to one expert; its
                  token rows are gathered (token = slot // top_k, padding masked), gate and up tiles are
                  accumulated in fp32 over K, and the epilogue writes silu(gate) * up as bf16 to
                  inter[slot] ([M * top_k, N], indexed by slot so the down kernel may use its own block_m).
* `moe_down`      grid (blocks) x (K-output tiles): inter rows x W2[e].T over N, times the router weight of
                  the slot in fp32, bf16 to y[slot] ([M * top_k, K]); top_k == 1 writes `out` directly.
* `moe_topk_sum`  out[m] = sum_j y[m * top_k + j] in fp32.
* fp8: `per_token_group_quant_fp8` before each GEMM, `moe_gate_up_fp8` / `moe_down_fp8` with BLOCK_K = 128
  so each K step applies one activation scale per row and one weight scale per output column.
* `moe_gate_up_fp8_fused_quant` (opt-in: `"fuse_quant": true` in the `moe_gate_up_fp8` config entry; no default
  sets it): the gate-up reads bf16 `hidden` and quantizes each gathered [block_m, 128] K step itself, with the
  math of `per_token_group_quant_fp8` (scale = max(amax, 1e-10) / 448, clamp to +-448, cast), so the first
  quant launch and its hq [M, K] fp8 / hs [M, K/128] fp32 round trip go away.  The price: every N-tile program
  of a block re-quantizes the same rows (N / BLOCK_N times per block, and a token routed to top_k experts is
  quantized in each of their blocks) and reads 2 bytes per activation instead of 1 (pipelined bf16 tiles: 64 vs
  50 KB of shared memory at the block_m = 16 default, 128 vs 96 KB at block_m = 128).  At decode the activations
  are a few KB next to MBs of streamed weights, so one launch fewer (and no dependent round trip) can win; at
  prefill the repeated quant and the doubled activation reads scale with M and may lose.

Weights are used in place (free views [E*2N, K], [E*K, N]); no load-time re-layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from harness.specs.moe.routing import align_block_size
from ports._port import Configs, HelionPort, Launch, Plan, check_main, pow2_at_most, rows_block, sm_count

KERNEL = "fused_moe"
FP8 = "fp8_w8a8_block128"
QBLOCK = 128  # fp8 block / group size along every reduction dim (the kernels spell it as a literal 128 so
# Helion sees a compile-time block size and drops the K masks; a module constant becomes a runtime argument)

# --------------------------------------------------------------------------------------------------------------
# Kernels (module level: Helion rejects closures)
# --------------------------------------------------------------------------------------------------------------


@helion.kernel(static_shapes=False)
def moe_gate_up(
    hidden: torch.Tensor,  # [M, K] bf16
    w1: torch.Tensor,  # [E * 2N, K] (view of [E, 2N, K])
    sorted_ids: torch.Tensor,  # [S] int32 slot ids, padding = M * top_k
    expert_ids: torch.Tensor,  # [S // block_m] int32
    num_post_padded: torch.Tensor,  # [1] int32
    inter: torch.Tensor,  # [M * top_k, N] bf16, written
    top_k: hl.constexpr,
    block_m: hl.constexpr,
) -> None:
    K = hl.specialize(hidden.size(1))
    N = hl.specialize(inter.size(1))
    S = sorted_ids.size(0)
    num_slots = inter.size(0)
    for tile_s, tile_n in hl.tile([S, N], block_size=[block_m, None]):
        if tile_s.begin < num_post_padded[0]:
            e = expert_ids[tile_s.id]
            slot = sorted_ids[tile_s]
            valid = slot < num_slots
            tok = torch.where(valid, slot // top_k, 0)
            # flat weight rows; indexing w1[e, tile_n, ...] with a loaded scalar `e` miscompiles (see report)
            rows = e * (2 * N) + tile_n.index
            acc_g = hl.zeros([tile_s, tile_n], dtype=torch.float32)
            acc_u = hl.zeros([tile_s, tile_n], dtype=torch.float32)
            for tile_k in hl.tile(K):
                a = hl.load(hidden, [tok, tile_k], extra_mask=valid[:, None])
                acc_g = hl.dot(a, w1[rows, tile_k].T, acc=acc_g)
                acc_u = hl.dot(a, w1[rows + N, tile_k].T, acc=acc_u)
            act = acc_g * torch.sigmoid(acc_g) * acc_u
            hl.store(inter, [slot, tile_n], act.to(inter.dtype), extra_mask=valid[:, None])


@helion.kernel(static_shapes=False)
def moe_down(
    inter: torch.Tensor,  # [M * top_k, N] bf16
    w2: torch.Tensor,  # [E * K, N] (view of [E, K, N])
    topk_weights: torch.Tensor,  # [M * top_k] fp32
    sorted_ids: torch.Tensor,
    expert_ids: torch.Tensor,
    num_post_padded: torch.Tensor,
    y: torch.Tensor,  # [M * top_k, K] bf16, written
    block_m: hl.constexpr,
) -> None:
    N = hl.specialize(inter.size(1))
    K = hl.specialize(y.size(1))
    S = sorted_ids.size(0)
    num_slots = y.size(0)
    for tile_s, tile_o in hl.tile([S, K], block_size=[block_m, None]):
        if tile_s.begin < num_post_padded[0]:
            e = expert_ids[tile_s.id]
            slot = sorted_ids[tile_s]
            valid = slot < num_slots
            row = torch.where(valid, slot, 0)
            rows = e * K + tile_o.index
            acc = hl.zeros([tile_s, tile_o], dtype=torch.float32)
            for tile_n in hl.tile(N):
                a = hl.load(inter, [row, tile_n], extra_mask=valid[:, None])
                acc = hl.dot(a, w2[rows, tile_n].T, acc=acc)
            wt = hl.load(topk_weights, [row], extra_mask=valid)
            acc = acc * wt[:, None]
            hl.store(y, [slot, tile_o], acc.to(y.dtype), extra_mask=valid[:, None])


@helion.kernel(static_shapes=False)
def moe_topk_sum(
    y: torch.Tensor,  # [M, top_k, K] bf16
    out: torch.Tensor,  # [M, K] bf16, written
) -> None:
    M = out.size(0)
    K = hl.specialize(out.size(1))
    hl.specialize(y.size(1))
    for tile_m, tile_k in hl.tile([M, K]):
        out[tile_m, tile_k] = torch.sum(y[tile_m, :, tile_k].to(torch.float32), dim=1).to(out.dtype)


@helion.kernel(static_shapes=False)
def per_token_group_quant_fp8(
    x: torch.Tensor,  # [R, C] bf16
    xq: torch.Tensor,  # [R, C] float8_e4m3fn, written
    xs: torch.Tensor,  # [R, ceil(C / 128)] fp32, written
) -> None:
    R = x.size(0)
    C = hl.specialize(x.size(1))
    # one program per (row tile, group of 128 columns); the last group may be partial (masked lanes read 0)
    for tile_r, tile_c in hl.tile([R, C], block_size=[None, 128]):
        v = x[tile_r, tile_c].to(torch.float32)
        amax = torch.amax(torch.abs(v), dim=1)
        scale = torch.clamp(amax, min=1e-10) / 448.0
        q = torch.clamp(v / scale[:, None], -448.0, 448.0)
        xq[tile_r, tile_c] = q.to(xq.dtype)
        hl.store(xs, [tile_r, tile_c.id], scale)


@helion.kernel(static_shapes=False)
def moe_gate_up_fp8(
    aq: torch.Tensor,  # [M, K] fp8
    a_scale: torch.Tensor,  # [M, ceil(K/128)] fp32
    w1: torch.Tensor,  # [E * 2N, K] fp8
    w1_scale: torch.Tensor,  # [E * ceil(2N/128), ceil(K/128)] fp32
    sorted_ids: torch.Tensor,
    expert_ids: torch.Tensor,
    num_post_padded: torch.Tensor,
    inter: torch.Tensor,  # [M * top_k, N] bf16, written
    top_k: hl.constexpr,
    block_m: hl.constexpr,
) -> None:
    K = hl.specialize(aq.size(1))
    N = hl.specialize(inter.size(1))
    S = sorted_ids.size(0)
    num_slots = inter.size(0)
    nb = (2 * N + 127) // 128
    for tile_s, tile_n in hl.tile([S, N], block_size=[block_m, None]):
        if tile_s.begin < num_post_padded[0]:
            e = expert_ids[tile_s.id]
            slot = sorted_ids[tile_s]
            valid = slot < num_slots
            tok = torch.where(valid, slot // top_k, 0)
            rows = e * (2 * N) + tile_n.index
            srow_g = e * nb + tile_n.index // 128
            srow_u = e * nb + (tile_n.index + N) // 128
            acc_g = hl.zeros([tile_s, tile_n], dtype=torch.float32)
            acc_u = hl.zeros([tile_s, tile_n], dtype=torch.float32)
            for tile_k in hl.tile(K, block_size=128):
                kb = tile_k.id
                a = hl.load(aq, [tok, tile_k], extra_mask=valid[:, None])
                sa = hl.load(a_scale, [tok, kb], extra_mask=valid)
                dg = hl.dot(a, w1[rows, tile_k].T, out_dtype=torch.float32)
                du = hl.dot(a, w1[rows + N, tile_k].T, out_dtype=torch.float32)
                acc_g = acc_g + dg * sa[:, None] * w1_scale[srow_g, kb][None, :]
                acc_u = acc_u + du * sa[:, None] * w1_scale[srow_u, kb][None, :]
            act = acc_g * torch.sigmoid(acc_g) * acc_u
            hl.store(inter, [slot, tile_n], act.to(inter.dtype), extra_mask=valid[:, None])


@helion.kernel(static_shapes=False)
def moe_gate_up_fp8_fused_quant(
    hidden: torch.Tensor,  # [M, K] bf16
    w1: torch.Tensor,  # [E * 2N, K] fp8
    w1_scale: torch.Tensor,  # [E * ceil(2N/128), ceil(K/128)] fp32
    sorted_ids: torch.Tensor,
    expert_ids: torch.Tensor,
    num_post_padded: torch.Tensor,
    inter: torch.Tensor,  # [M * top_k, N] bf16, written
    top_k: hl.constexpr,
    block_m: hl.constexpr,
) -> None:
    # `moe_gate_up_fp8` with the activation quant done per K step (host key `fuse_quant`; module docstring):
    # each step of 128 is one quant group of the gathered rows, quantized as per_token_group_quant_fp8 does
    K = hl.specialize(hidden.size(1))
    N = hl.specialize(inter.size(1))
    S = sorted_ids.size(0)
    num_slots = inter.size(0)
    nb = (2 * N + 127) // 128
    for tile_s, tile_n in hl.tile([S, N], block_size=[block_m, None]):
        if tile_s.begin < num_post_padded[0]:
            e = expert_ids[tile_s.id]
            slot = sorted_ids[tile_s]
            valid = slot < num_slots
            tok = torch.where(valid, slot // top_k, 0)
            rows = e * (2 * N) + tile_n.index
            srow_g = e * nb + tile_n.index // 128
            srow_u = e * nb + (tile_n.index + N) // 128
            acc_g = hl.zeros([tile_s, tile_n], dtype=torch.float32)
            acc_u = hl.zeros([tile_s, tile_n], dtype=torch.float32)
            for tile_k in hl.tile(K, block_size=128):
                kb = tile_k.id
                # per_token_group_quant_fp8 of these rows and this group (masked lanes read 0, as there)
                v = hl.load(hidden, [tok, tile_k], extra_mask=valid[:, None]).to(torch.float32)
                sa = torch.clamp(torch.amax(torch.abs(v), dim=1), min=1e-10) / 448.0
                a = torch.clamp(v / sa[:, None], -448.0, 448.0).to(w1.dtype)
                dg = hl.dot(a, w1[rows, tile_k].T, out_dtype=torch.float32)
                du = hl.dot(a, w1[rows + N, tile_k].T, out_dtype=torch.float32)
                acc_g = acc_g + dg * sa[:, None] * w1_scale[srow_g, kb][None, :]
                acc_u = acc_u + du * sa[:, None] * w1_scale[srow_u, kb][None, :]
            act = acc_g * torch.sigmoid(acc_g) * acc_u
            hl.store(inter, [slot, tile_n], act.to(inter.dtype), extra_mask=valid[:, None])


@helion.kernel(static_shapes=False)
def moe_down_fp8(
    iq: torch.Tensor,  # [M * top_k, N] fp8
    i_scale: torch.Tensor,  # [M * top_k, ceil(N/128)] fp32
    w2: torch.Tensor,  # [E * K, N] fp8
    w2_scale: torch.Tensor,  # [E * ceil(K/128), ceil(N/128)] fp32
    topk_weights: torch.Tensor,  # [M * top_k] fp32
    sorted_ids: torch.Tensor,
    expert_ids: torch.Tensor,
    num_post_padded: torch.Tensor,
    y: torch.Tensor,  # [M * top_k, K] bf16, written
    block_m: hl.constexpr,
) -> None:
    N = hl.specialize(iq.size(1))
    K = hl.specialize(y.size(1))
    S = sorted_ids.size(0)
    num_slots = y.size(0)
    kb_per_e = (K + 127) // 128
    for tile_s, tile_o in hl.tile([S, K], block_size=[block_m, None]):
        if tile_s.begin < num_post_padded[0]:
            e = expert_ids[tile_s.id]
            slot = sorted_ids[tile_s]
            valid = slot < num_slots
            row = torch.where(valid, slot, 0)
            rows = e * K + tile_o.index
            srows = e * kb_per_e + tile_o.index // 128
            acc = hl.zeros([tile_s, tile_o], dtype=torch.float32)
            for tile_n in hl.tile(N, block_size=128):
                nbk = tile_n.id
                a = hl.load(iq, [row, tile_n], extra_mask=valid[:, None])
                sa = hl.load(i_scale, [row, nbk], extra_mask=valid)
                d = hl.dot(a, w2[rows, tile_n].T, out_dtype=torch.float32)
                acc = acc + d * sa[:, None] * w2_scale[srows, nbk][None, :]
            wt = hl.load(topk_weights, [row], extra_mask=valid)
            acc = acc * wt[:, None]
            hl.store(y, [slot, tile_o], acc.to(y.dtype), extra_mask=valid[:, None])


# --------------------------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------------------------

GEMM_KERNELS = {"bf16": ("moe_gate_up", "moe_down"), FP8: ("moe_gate_up_fp8", "moe_down_fp8")}


def kernel_names(dtype: str, top_k: int) -> tuple[str, ...]:
    names = GEMM_KERNELS[dtype]
    if dtype == FP8:
        names = ("per_token_group_quant_fp8", *names)
    if top_k > 1:
        names = (*names, "moe_topk_sum")
    return names


def case_dims(case: Case) -> dict[str, int]:
    """The dims that select a tuned config (bucket key order)."""
    p = case.params
    return {"E": int(p["E"]), "N": int(p["N"]), "K": int(p["K"]), "top_k": int(p["top_k"]), "M": int(p["M"])}


def _pow2_at_most(block: int, dim: int, floor: int = 16) -> int:
    return pow2_at_most(block, dim, floor)


def default_block_m(m: int, top_k: int, e: int) -> int:
    """Rows of one sorted block, from the mean tokens per expert (vLLM's H100 tuned files follow the same
    steps: 16 while decode leaves experts near-empty, 128 for prefill)."""
    per_expert = m * top_k / e
    if per_expert < 12:
        return 16
    if per_expert < 24:
        return 32
    if per_expert < 96:
        return 64
    return 128




def _fit_block(dim: int, cap: int, floor: int = 16) -> int:
    """The largest power of two in [floor, cap] dividing `dim` (no masked tail tile), else `cap` shrunk to the
    next power of two >= dim."""
    b = cap
    while b >= floor:
        if dim % b == 0:
            return b
        b //= 2
    return _pow2_at_most(cap, dim, floor)


def _expected_blocks(m: int, top_k: int, e: int, block_m: int) -> float:
    """Sorted blocks under uniform routing: active experts x blocks per active expert."""
    active = e * (1.0 - (1.0 - min(top_k, e) / e) ** m)
    return active * math.ceil(m * top_k / max(active, 1.0) / block_m)


def default_configs(dims: Mapping[str, int], dtype: str) -> dict[str, dict[str, Any]]:
    """Fixed defaults used when ports/configs has no tuned entry (never autotuned here).

    Each GEMM entry holds `block_m` (the routing block, a constexpr kernel argument, not a Helion Config
    field) plus Helion Config fields.  Gate-up block_sizes = [BLOCK_N, BLOCK_K] (two accumulators, gate and
    up, so the tile is 2 x BLOCK_N wide); down block_sizes = [BLOCK_K_out, BLOCK_N_reduce]; fp8 kernels fix the
    reduction block at 128 so only the output tile is listed.

    Choices: output tiles that divide N / K (N = 192 gets 64, not a half-empty 128); `loop_orders [[1, 0]]`
    makes the output-tile index the fastest-varying program id, so the programs of one token block run back to
    back and share its gathered activation rows in L2 (what vLLM's GROUP_SIZE_M grouping is for) while an
    expert's weights stay L2-resident across its blocks.

    Decode (block_m <= 32) streams a few experts' weights, and what sets the rate is the bytes each program keeps
    in flight more than the number of programs.  From a tile grid on the H200 (scripts/probes/fused_moe_tiles.py,
    9 decode shapes; its raw output is ports/configs/h200/fused_moe.probe-20261203.jsonl) and the full H200 sweeps
    before and after (results/h200/*-0428ff5a-*, *-ad2d7454-*):
    - bf16 gate-up keeps 64-wide tiles instead of shrinking them toward two waves of programs (the probe: 5-22 %
      faster per kernel at M = 8-32).  It uses 3 stages at M <= 8 (faster there) and 4 above: 3 stages cost 5-12 %
      at M = 32-512 with 128+ experts (deepseek-v3 and mistral-large-3 M = 128 went 0.96x / 0.94x with 3 stages).
    - When a handful of blocks leaves fewer programs than half the SMs (M = 1), bf16 takes 32 x 256 tiles with 4
      stages: M = 1 went from 0.90-1.41x to 1.04-1.61x vs the best upstream.
    - fp8 gate-up at block_m = 16 takes 32-wide tiles with 6 stages (8-33 % faster per kernel; M = 1-8 went
      0.88-1.09x -> 1.00-1.31x).  At block_m = 32 the same tiles ran 0.77-0.87x (M = 512 with 12-16 rows per
      expert), so block_m = 32 keeps the two-wave rule and 4 stages.
    Prefill at block_m = 64 takes 3 stages over 4 (gate-up 95 vs 120 us at llama4-scout M = 512; 0.91x -> 1.06x).
    block_m = 128 keeps gate-up tiles >= 64 wide: at llama4-scout M = 2048 the gate-up ran 160 us at 64 vs 176 us
    at 32.
    """
    m, e, n, k, top_k = dims["M"], dims["E"], dims["N"], dims["K"], dims["top_k"]
    bm = default_block_m(m, top_k, e)
    big = bm == 128
    decode = bm <= 32
    warps = 8 if big else 4
    stages = 3 if bm >= 64 else 4
    blocks = _expected_blocks(m, top_k, e, bm)
    waves = 2 * sm_count()
    gu_stages = stages
    gu_bk = _pow2_at_most(64 if bm >= 64 else 128, k, floor=32)
    gu_bn = _fit_block(n, 128 if big else 64)
    if decode:  # no shrinking toward two waves: a wider tile keeps more bytes in flight per program
        gu_stages = 3 if m <= 8 else 4
        if blocks * math.ceil(n / gu_bn) < sm_count() / 2:  # a handful of blocks: fewer, deeper programs
            gu_bn, gu_bk, gu_stages = _fit_block(n, 32), _pow2_at_most(256, k, floor=32), 4
    else:
        while gu_bn > (64 if big else 16) and blocks * math.ceil(n / gu_bn) < waves:
            gu_bn //= 2
    dn_bo = _fit_block(k, 128, floor=32)
    while dn_bo > 32 and blocks * math.ceil(k / dn_bo) < waves:
        dn_bo //= 2
    dn_bk = _fit_block(n, 64, floor=32)
    order = {"loop_orders": [[1, 0]]}
    out: dict[str, dict[str, Any]] = {}
    if dtype == "bf16":
        out["moe_gate_up"] = {"block_m": bm, "block_sizes": [gu_bn, gu_bk], "num_warps": warps,
                              "num_stages": gu_stages, **order}
        out["moe_down"] = {"block_m": bm, "block_sizes": [dn_bo, dn_bk], "num_warps": warps, "num_stages": stages,
                           **order}
    elif dtype == FP8:
        out["per_token_group_quant_fp8"] = {"block_sizes": [_pow2_at_most(16, m * top_k, floor=1)], "num_warps": 4}
        fp8_bn, fp8_stages = gu_bn, stages
        if bm == 16:
            fp8_bn, fp8_stages = _fit_block(n, 32), 6
        elif bm == 32:  # the two-wave rule (32-wide tiles at 6 stages ran 0.77-0.87x here, see the docstring)
            while fp8_bn > 16 and blocks * math.ceil(n / fp8_bn) < waves:
                fp8_bn //= 2
        out["moe_gate_up_fp8"] = {"block_m": bm, "block_sizes": [fp8_bn], "num_warps": warps,
                                  "num_stages": fp8_stages, **order}
        out["moe_down_fp8"] = {"block_m": bm, "block_sizes": [dn_bo], "num_warps": warps, "num_stages": stages,
                               **order}
    else:
        raise ValueError(f"unknown dtype {dtype!r}")
    if top_k > 1:
        out["moe_topk_sum"] = {"block_sizes": [_pow2_at_most(8, m, floor=1), _pow2_at_most(256, k)], "num_warps": 4}
    return out


class HelionFusedMoE(HelionPort):
    kernel: ClassVar[str] = KERNEL
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", FP8)
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "fuse_quant")
    notes: ClassVar[tuple[str, ...]] = ("weights used in place (views [E*2N,K], [E*K,N]; no re-layout)",)

    def case_dims(self, case: Case) -> dict[str, int]:
        return case_dims(case)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        """The GEMMs' routing block: the default and its neighbour toward the side the token count leans to (two
        values keep tuning within budget); block_m fixes the routing, so it is searched outside Helion.

        fp8 gate-up at decode (default block_m <= 32) also tries the fused activation quant at the default block_m.
        The tuner times that launch alone, so the fused kernel carries the quant the unfused one gets from its own
        launch: it is kept only where it beats the bare GEMM (the probe compares quant + GEMM instead)."""
        if name not in GEMM_KERNELS[dtype]:
            return [{}]
        bm = default_block_m(dims["M"], dims["top_k"], dims["E"])
        ladder = [16, 32, 64, 128]
        i = ladder.index(bm)
        other = ladder[i + 1] if i + 1 < len(ladder) else ladder[i - 1]
        cands: list[dict[str, Any]] = [{"block_m": bm}, {"block_m": other}]
        if dtype == FP8 and name == GEMM_KERNELS[FP8][0] and bm <= 32:
            cands.append({"block_m": bm, "fuse_quant": True})
        return cands

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        """Routing per block_m (untimed), scratch buffers, weight views; the timed launches in order."""
        assert isinstance(out, torch.Tensor)
        h = inputs["hidden_states"]
        w1, w2 = inputs["w1"], inputs["w2"]
        topk_weights, topk_ids = inputs["topk_weights"], inputs["topk_ids"]
        if h.dim() != 2:
            raise ValueError(f"hidden_states must be [M, K], got {tuple(h.shape)}")
        m, k = h.shape
        if w1.dim() != 3 or w1.shape[2] != k or w1.shape[1] % 2:
            raise ValueError(f"w1 must be [E, 2N, K={k}], got {tuple(w1.shape)}")
        e, n2, _ = w1.shape
        n = n2 // 2
        if tuple(w2.shape) != (e, k, n):
            raise ValueError(f"w2 must be [E={e}, K={k}, N={n}], got {tuple(w2.shape)}")
        if topk_ids.dim() != 2 or topk_ids.shape[0] != m or tuple(topk_weights.shape) != tuple(topk_ids.shape):
            raise ValueError(
                f"topk_ids/topk_weights must be [M={m}, top_k], got {tuple(topk_ids.shape)}, "
                f"{tuple(topk_weights.shape)}"
            )
        if tuple(out.shape) != (m, k) or out.dtype != torch.bfloat16:
            raise ValueError(f"out must be bf16 [M={m}, K={k}], got {out.dtype} {tuple(out.shape)}")
        if dtype not in GEMM_KERNELS:
            raise ValueError(f"unknown dtype {dtype!r}; valid: {', '.join(GEMM_KERNELS)}")
        top_k = topk_ids.shape[1]
        dev = h.device
        gu_name, dn_name = GEMM_KERNELS[dtype]
        bm_gu, bm_dn = configs[gu_name].get("block_m"), configs[dn_name].get("block_m")
        if bm_gu is None or bm_dn is None:
            raise ValueError(f"configs of {gu_name} and {dn_name} need block_m")
        bm_gu, bm_dn = int(bm_gu), int(bm_dn)
        routing = {bm: align_block_size(topk_ids, e, bm) for bm in {bm_gu, bm_dn}}

        slots = m * top_k
        inter = torch.empty(slots, n, dtype=torch.bfloat16, device=dev)
        # top_k == 1: each token has one slot, so the down GEMM writes `out` itself and no sum is needed
        y = out if top_k == 1 else torch.empty(slots, k, dtype=torch.bfloat16, device=dev)
        wts = topk_weights.reshape(slots)
        if wts.dtype != torch.float32:
            raise ValueError(f"topk_weights must be fp32, got {topk_weights.dtype}")
        w1f = w1.reshape(e * n2, k)
        w2f = w2.reshape(e * k, n)
        if dtype == "bf16":
            steps = [Launch(moe_gate_up, (h, w1f, *routing[bm_gu], inter, top_k, bm_gu)),
                     Launch(moe_down, (inter, w2f, wts, *routing[bm_dn], y, bm_dn))]
        else:
            if w1.dtype != torch.float8_e4m3fn or w2.dtype != torch.float8_e4m3fn:
                raise ValueError(f"{FP8} needs float8_e4m3fn weights, got {w1.dtype}/{w2.dtype}")
            w1s, w2s = inputs["w1_scale"], inputs["w2_scale"]
            kb, nb2, nb = math.ceil(k / QBLOCK), math.ceil(n2 / QBLOCK), math.ceil(n / QBLOCK)
            if tuple(w1s.shape) != (e, nb2, kb) or tuple(w2s.shape) != (e, kb, nb) or w1s.dtype != torch.float32:
                raise ValueError(f"scales must be fp32 [E,{nb2},{kb}] and [E,{kb},{nb}], got {tuple(w1s.shape)}, "
                                 f"{tuple(w2s.shape)} {w1s.dtype}")
            w1sf = w1s.reshape(e * nb2, kb)
            w2sf = w2s.reshape(e * kb, nb)
            iq = torch.empty(slots, n, dtype=torch.float8_e4m3fn, device=dev)
            is_ = torch.empty(slots, nb, dtype=torch.float32, device=dev)
            if configs[gu_name].get("fuse_quant", False):  # same config entry, one launch fewer
                steps = [Launch(moe_gate_up_fp8_fused_quant, (h, w1f, w1sf, *routing[bm_gu], inter, top_k, bm_gu),
                                name=gu_name)]
            else:
                hq = torch.empty(m, k, dtype=torch.float8_e4m3fn, device=dev)
                hs = torch.empty(m, kb, dtype=torch.float32, device=dev)
                steps = [Launch(per_token_group_quant_fp8, (h, hq, hs), adjust=rows_block(m)),
                         Launch(moe_gate_up_fp8, (hq, hs, w1f, w1sf, *routing[bm_gu], inter, top_k, bm_gu))]
            steps += [
                Launch(per_token_group_quant_fp8, (inter, iq, is_), adjust=rows_block(slots)),
                Launch(moe_down_fp8, (iq, is_, w2f, w2sf, wts, *routing[bm_dn], y, bm_dn)),
            ]
        if top_k > 1:
            steps.append(Launch(moe_topk_sum, (y.view(m, top_k, k), out), adjust=rows_block(m)))
        return steps

    def build(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Mapping[str, Any]) -> Plan:
        plan = super().build(inputs, out, case, dtype, configs)
        gu_name, dn_name = GEMM_KERNELS[dtype]
        bm_gu, bm_dn = plan.configs[gu_name]["block_m"], plan.configs[dn_name]["block_m"]
        top_k = int(inputs["topk_ids"].shape[1])
        plan.notes[:0] = [
            f"routing align_block_size(block_m={bm_gu}{'' if bm_dn == bm_gu else f'/{bm_dn}'}) in prepare",
            "timed: gate-up GEMM with SiLU*up epilogue, down GEMM x router weight"
            + (", top-k sum kernel" if top_k > 1 else " writing out directly (top_k=1)"),
        ]
        if dtype == FP8 and plan.configs[gu_name].get("fuse_quant", False):
            plan.notes.append("activations quantized per token-group of 128 inside the gate-up kernel "
                              "(fuse_quant), by a Helion kernel before the down GEMM")
        elif dtype == FP8:
            plan.notes.append("activations quantized per token-group of 128 by a Helion kernel (2 launches)")
        return plan


IMPL = HelionFusedMoE()


def fused_moe(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    *,
    w1_scale: torch.Tensor | None = None,
    w2_scale: torch.Tensor | None = None,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
) -> torch.Tensor:
    """One-shot host wrapper: [M, K] x experts -> [M, K] bf16 (routing and compile included, so not for timing)."""
    dtype = "bf16" if w1_scale is None else FP8
    inputs: dict[str, Any] = {"hidden_states": hidden_states, "w1": w1, "w2": w2,
                              "topk_weights": topk_weights, "topk_ids": topk_ids}
    if w1_scale is not None:
        inputs["w1_scale"], inputs["w2_scale"] = w1_scale, w2_scale
    m, k = hidden_states.shape
    dims = {"E": w1.shape[0], "N": w1.shape[1] // 2, "K": k, "top_k": topk_ids.shape[1], "M": m}
    case = Case("call", "test", {**dims, "tp": 1})
    out = torch.empty(m, k, dtype=torch.bfloat16, device=hidden_states.device)
    IMPL.build(inputs, out, case, dtype, configs or default_configs(dims, dtype))()
    return out


# --------------------------------------------------------------------------------------------------------------
# Reference and check
# --------------------------------------------------------------------------------------------------------------


def main() -> None:
    if torch.cuda.is_available():
        cases = [(32, 128, 8, 4096, 192), (2048, 128, 8, 4096, 192), (1, 16, 1, 5120, 1024)]
    else:
        cases = [(5, 6, 2, 96, 40), (5, 6, 2, 256, 192)]
    check_main(IMPL, [Case("check", "test", {"M": m, "E": e, "top_k": t, "K": k, "N": n, "tp": 1})
                      for m, e, t, k, n in cases])


if __name__ == "__main__":
    main()
