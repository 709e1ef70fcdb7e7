"""Helion port of the int4 (GPTQ / AWQ) fused-MoE grouped GEMM (catalog row 43; vLLM 0.33.0
`fused_moe_kernel_gptq_awq` via `invoke_fused_moe_wna16_triton_kernel`, MoeWNA16Method's layout).

    out[m, j, :] = [w[m, j] *] a[row(s)] @ W[e].T,  W[e][n, k] = (w4[e, n, k] - z[e, n, k // G]) * scale[e, n, k // G]
    a [M or M*top_k, K] bf16; qweight [E, N, K/2] uint8 (k even = low nibble); scales [E, N, K/G] bf16;
    qzeros [E, N/2, K/G] uint8 (w4a16_zp; n even = low nibble) or z = 8 (w4a16) -> out [M, top_k, N] bf16

One kernel, the fused-MoE structure of ports/moe/fused_moe.py: grid (expert-sorted slot blocks of block_m, from the
shared align_block_size routing computed in prepare) x (N tiles).  The K loop steps over packed bytes, BK/2 per
step with BK dividing G (one scale and zero point per output column and step, [BN] vectors prefetched one step
ahead).  Each step dequantizes the [BN, BK/2] byte tile in registers ((w4 - z) exact in bf16, times the bf16 scale:
one rounding), interleaves the two nibbles back into k order ([BN, BK]: join + reshape) and does one hl.dot against
the contiguous [BM, BK] activation slice of the gathered rows (fp32 accumulate).  Both loads are contiguous along K,
so Triton vectorizes them and pipelines them as asynchronous copies; the int4 weights are read from HBM once and
never unpacked to memory.  The down GEMM multiplies the router weight in the epilogue.  Weight-bandwidth bound in
decode (0.5 byte per weight + scales), tensor-core and dequantization bound in prefill (see default_configs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from harness.specs.moe.fused_moe_wna16 import SYM_ZERO, ZP, layer_dims
from harness.specs.moe.routing import align_block_size
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most
from ports.moe.fused_moe import _expected_blocks, _fit_block, default_block_m


@helion.kernel(static_shapes=False)
def wna16_moe_gemm(
    a: torch.Tensor,  # [rows, K] bf16
    qweight: torch.Tensor,  # [E * N, K / 2] uint8
    scales: torch.Tensor,  # [E * N, K / G] bf16
    qzeros: torch.Tensor,  # [E * N / 2, K / G] uint8 (unused unless has_zp)
    topk_weights: torch.Tensor,  # [M * top_k] fp32 (used when apply_weight)
    sorted_ids: torch.Tensor,  # [S] int32 slot ids, padding = M * top_k
    expert_ids: torch.Tensor,  # [S // block_m] int32
    out: torch.Tensor,  # [M * top_k, N] bf16, written
    row_div: hl.constexpr,  # a row of slot s: s // row_div (top_k for gate_up, 1 for down)
    group: hl.constexpr,  # G
    bk: hl.constexpr,  # K per step (BK <= G, dividing it: one scale per output column and step)
    has_zp: hl.constexpr,
    apply_weight: hl.constexpr,
    block_m: hl.constexpr,
) -> None:
    KH = hl.specialize(qweight.size(1))
    KG = hl.specialize(scales.size(1))
    N = hl.specialize(out.size(1))
    S = sorted_ids.size(0)
    num_slots = out.size(0)
    for tile_s, tile_n in hl.tile([S, N], block_size=[block_m, None]):
        e = expert_ids[tile_s.id]
        slot = sorted_ids[tile_s]
        valid = slot < num_slots
        row = torch.where(valid, slot // row_div, 0)
        wrows = e * N + tile_n.index
        acc = hl.zeros([tile_s, tile_n], dtype=torch.float32)
        # scales / zero points are [BN] vectors of 2-byte (1-byte) strided elements, too narrow for the pipeliner's
        # asynchronous copies: each step loads the next step's (the group of K column begin + BK, wrapped to 0 after
        # the last) so its latency hides behind this step's work instead of stalling it
        sc = hl.load(scales, [wrows, 0])
        zrows = wrows // 2
        zb = hl.load(qzeros, [zrows, 0]).to(torch.int32) if has_zp else sc
        # the loop runs over packed bytes and the activation columns are derived from it by a product (2 * begin),
        # not a floor division, so Triton proves both loads contiguous and aligned: 16-byte vector loads that
        # its pipeliner turns into asynchronous copies (scalar gathers of either operand stall every step)
        for tile_kh in hl.tile(KH, block_size=bk // 2):
            g_next = ((tile_kh.begin * 2 + bk) // group) % KG
            sc_next = hl.load(scales, [wrows, g_next])
            packed = qweight[wrows, tile_kh].to(torch.int32)  # [BN, BK / 2]
            if has_zp:
                z = (zb >> ((tile_n.index % 2) * 4)) & 0xF
                zb = hl.load(qzeros, [zrows, g_next]).to(torch.int32)
            else:
                z = hl.full([tile_n], SYM_ZERO, dtype=torch.int32)
            # (w4 - z) is exact in the activation dtype; times the scale: one rounding, as the reference's fp32
            # product rounded to bf16.  Low nibble = even k, so stacking (lo, hi) last and flattening restores
            # k order: one [BN, BK] tile, one dot against a contiguous [BM, BK] activation tile.
            w_lo = ((packed & 0xF) - z[:, None]).to(a.dtype) * sc[:, None]
            w_hi = ((packed >> 4) - z[:, None]).to(a.dtype) * sc[:, None]
            w = hl.join(w_lo.to(a.dtype), w_hi.to(a.dtype)).reshape(tile_n.block_size, bk)
            x = hl.load(a, [row, tile_kh.begin * 2 + hl.arange(bk)], extra_mask=valid[:, None])  # [BM, BK]
            acc = hl.dot(x, w.T, acc=acc)
            sc = sc_next
        if apply_weight:
            wt = hl.load(topk_weights, [torch.where(valid, slot, 0)], extra_mask=valid)
            acc = acc * wt[:, None]
        hl.store(out, [slot, tile_n], acc.to(out.dtype), extra_mask=valid[:, None])


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    """block_m from tokens per expert (fused_moe's ladder), then two buckets.

    Decode (block_m <= 32, weight-bandwidth bound): BN fits N and shrinks until ~2 waves on the SMs (a few
    experts' weights streamed); BK = the group (<= 128), 4 warps, 4 stages.

    Prefill (block_m 64 / 128, tensor-core bound): the dequantized [BN, BK] tile is written to shared memory for
    the MMA every step, so Triton waits for each step's MMA before the next dequantization; the overlap of one
    program's MMA with another's dequantization comes from two or more programs per SM.  Hence BK = 64 (the
    activation ring and the weight tile stay at ~94 KB with 4 stages at BM = 128, BN = 128: two programs fit the
    228 KB of an SM, where BK = 128 needs 147 KB at 3 stages: one), BN = 128 (activation re-reads per MAC halve
    against 64; the dequantization per MAC is 1 / BM whatever BN), and 8 warps for BM = 128 (two 64-row
    warpgroups), 4 for BM = 64.  vLLM's Triton path tiles this regime 64 x 64 x 32, 4 warps."""
    m, e, top_k, group = int(dims["M"]), int(dims["E"]), int(dims["top_k"]), int(dims["G"])
    k, n, _ = layer_dims(dict(dims))
    bm = default_block_m(m, top_k, e)
    blocks = _expected_blocks(m, top_k, e, bm)
    if bm >= 64:
        bn = fill_sms(_fit_block(n, 128, floor=32), 32, lambda b: blocks * ((n + b - 1) // b), per_sm=1)
        return {"wna16_moe_gemm": {"block_m": bm, "block_k": min(group, 64),
                                   "block_sizes": [pow2_at_most(bn, n, floor=16)],
                                   "num_warps": 8 if bm >= 128 else 4, "num_stages": 4, "loop_orders": [[1, 0]]}}
    bn = fill_sms(_fit_block(n, 64, floor=32), 32, lambda b: blocks * ((n + b - 1) // b))
    return {"wna16_moe_gemm": {"block_m": bm, "block_k": min(group, 128),
                               "block_sizes": [pow2_at_most(bn, n, floor=16)],
                               "num_warps": 4, "num_stages": 4, "loop_orders": [[1, 0]]}}


class HelionFusedMoEWNA16(HelionPort):
    kernel: ClassVar[str] = "fused_moe_wna16"
    dtypes: ClassVar[tuple[str, ...] | None] = ("w4a16", ZP)
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "block_k")
    notes: ClassVar[tuple[str, ...]] = ("routing align_block_size in prepare; int4 dequantized in registers per "
                                        "K step, nibbles interleaved into one [BN, BK] tile, one dot against the "
                                        "contiguous [BM, BK] activations; router weight in the epilogue",)

    def case_dims(self, case: Case) -> dict[str, Any]:
        p = case.params
        return {k: p[k] for k in ("layer", "E", "top_k", "H", "I", "G", "M")}

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        p = case.params
        k, n, rows = layer_dims(dict(p))
        e, top_k, group = int(p["E"]), int(p["top_k"]), int(p["G"])
        a, qw, sc = inputs["a"], inputs["qweight"], inputs["scales"]
        ids, wts = inputs["topk_ids"], inputs["topk_weights"]
        m = ids.shape[0]
        if tuple(a.shape) != (rows, k) or tuple(qw.shape) != (e, n, k // 2) or tuple(sc.shape) != (e, n, k // group):
            raise ValueError(f"bad shapes a {tuple(a.shape)} qweight {tuple(qw.shape)} scales {tuple(sc.shape)}")
        if tuple(out.shape) != (m, top_k, n) or k % group or group % 2:
            raise ValueError(f"bad out {tuple(out.shape)} or group {group} for K={k}")
        has_zp = dtype == ZP
        qz = inputs["qzeros"].reshape(e * n // 2, k // group) if has_zp else qw.reshape(e * n, k // 2)[:1]
        entry = configs["wna16_moe_gemm"]
        bm = int(entry["block_m"])
        bk = int(entry.get("block_k", min(group, 128)))
        if bk < 16 or bk & (bk - 1) or group % bk:
            raise ValueError(f"block_k {bk} must be a power of two >= 16 dividing the group {group}")
        sorted_ids, expert_ids, _ = align_block_size(ids, e, bm)
        down = p["layer"] == "down"
        return [Launch(wna16_moe_gemm, (a, qw.reshape(e * n, k // 2), sc.reshape(e * n, k // group), qz,
                                        wts.reshape(-1), sorted_ids, expert_ids, out.view(m * top_k, n),
                                        1 if down else top_k, group, bk, has_zp, down, bm))]


IMPL = HelionFusedMoEWNA16()

if __name__ == "__main__":
    check_main(IMPL)
