"""Shared kernels and routing of the multi-LoRA ports (vLLM punica layout and SGLang's stacked layout).

Routing (untimed prepare, from the integer token -> adapter mapping): tokens are sorted by adapter (stable) and
each adapter's run, and the run of base-model tokens (-1), is padded to a multiple of `block_m`; `tile_lora[b]`
is the adapter of block b (-1 = base model), padding slots hold T (masked).  This is routing.align_block_size
with the base model as one more "expert", the same layout the fused-MoE port uses.

Kernels (grid = sorted token blocks x output tiles; every block belongs to one adapter, so its weight tile is one
dense [N, K] tile and the product is an hl.dot on tensor cores):

* `lora_shrink_kernel`  out[s*T + t, :R] = scale * x[t] @ A[(s*L + l)*R : ..., :].T  (0 for base tokens, whose
                        x rows are never read).  vLLM: S slices, R = r, fp32 out; SGLang: S = 1, R = S*r, bf16.
* `lora_expand_kernel`  y[t, n] = base[t, n] + scaling[l] * xa[t, :] @ B[l*stride_l + off + n, :]  (y = base for
                        base tokens); one launch per slice with strided views of xa, base and y.  Base is read
                        and y written in the same pass (no separate copy).
"""

from __future__ import annotations

import helion
import helion.language as hl
import torch

from harness.specs.moe.routing import align_block_size
from ports._port import fill_sms, pow2_at_most, sm_count


@helion.kernel(static_shapes=False)
def lora_shrink_kernel(
    x: torch.Tensor,  # [T, H] bf16
    a: torch.Tensor,  # [S * L * R, H] bf16 (flat view of A)
    sorted_ids: torch.Tensor,  # [P] int32 tokens sorted by adapter, padding = T
    tile_lora: torch.Tensor,  # [P // block_m] int32 adapter per block, -1 = base model
    out: torch.Tensor,  # [S * T, R] written (fp32 vLLM / bf16 SGLang)
    scale: float,
    num_loras: int,
    block_m: hl.constexpr,
) -> None:
    T = x.size(0)
    H = hl.specialize(x.size(1))
    R = hl.specialize(out.size(1))
    S = out.size(0) // T
    P = sorted_ids.size(0)
    for tile_m, tile_s, tile_r in hl.tile([P, S, R], block_size=[block_m, 1, None]):
        tok = sorted_ids[tile_m]
        valid = tok < T
        tok = torch.where(valid, tok, 0)
        lora = tile_lora[tile_m.id]
        orow = tile_s.begin * T + tok
        if lora >= 0:
            rows = (tile_s.begin * num_loras + lora) * R + tile_r.index
            acc = hl.zeros([tile_m, tile_r], dtype=torch.float32)
            for tile_k in hl.tile(H):
                xa = hl.load(x, [tok, tile_k], extra_mask=valid[:, None])
                acc = hl.dot(xa, a[rows, tile_k].T, acc=acc)
            hl.store(out, [orow, tile_r], (acc * scale).to(out.dtype), extra_mask=valid[:, None])
        else:
            hl.store(out, [orow, tile_r], hl.zeros([tile_m, tile_r], dtype=out.dtype), extra_mask=valid[:, None])


@helion.kernel(static_shapes=False)
def lora_shrink_split_kernel(
    x: torch.Tensor,  # [T, H] bf16
    a: torch.Tensor,  # [S * L * R, H] bf16 (flat view of A)
    sorted_ids: torch.Tensor,  # [P] int32 tokens sorted by adapter, padding = T
    tile_lora: torch.Tensor,  # [P // block_m] int32 adapter per block, -1 = base model
    part: torch.Tensor,  # [SPLIT, S * T, R] fp32 partial sums, written
    num_loras: int,
    k_per_split: int,  # H columns per split (a multiple of the K tile)
    block_m: hl.constexpr,
) -> None:
    T = x.size(0)
    H = hl.specialize(x.size(1))
    R = hl.specialize(part.size(2))
    SPLIT = part.size(0)
    S = part.size(1) // T
    P = sorted_ids.size(0)
    for tile_m, tile_s, tile_r, tile_p in hl.tile([P, S, R, SPLIT], block_size=[block_m, 1, None, 1]):
        tok = sorted_ids[tile_m]
        valid = tok < T
        tok = torch.where(valid, tok, 0)
        lora = tile_lora[tile_m.id]
        orow = tile_s.begin * T + tok
        k0 = tile_p.begin * k_per_split
        k1 = min(k0 + k_per_split, H)
        acc = hl.zeros([tile_m, tile_r], dtype=torch.float32)
        if lora >= 0:
            rows = (tile_s.begin * num_loras + lora) * R + tile_r.index
            for tile_k in hl.tile(k0, k1):
                xa = hl.load(x, [tok, tile_k], extra_mask=valid[:, None])
                acc = hl.dot(xa, a[rows, tile_k].T, acc=acc)
        hl.store(part, [tile_p.begin, orow, tile_r], acc, extra_mask=valid[:, None])


@helion.kernel(static_shapes=False)
def lora_shrink_reduce(
    part: torch.Tensor,  # [SPLIT, rows, R] fp32
    out: torch.Tensor,  # [rows, R], written
    scale: float,
) -> None:
    rows = out.size(0)
    R = hl.specialize(out.size(1))
    hl.specialize(part.size(0))
    for tile_r, tile_c in hl.tile([rows, R]):
        out[tile_r, tile_c] = (torch.sum(part[:, tile_r, tile_c], dim=0) * scale).to(out.dtype)


@helion.kernel(static_shapes=False)
def lora_expand_kernel(
    xa: torch.Tensor,  # [T, R] (fp32 vLLM shrink buffer slice / bf16 SGLang columns), may be a strided view
    b: torch.Tensor,  # [*, R] bf16 flat B rows
    scalings: torch.Tensor,  # [L] fp32 per-adapter scaling
    sorted_ids: torch.Tensor,  # [P] int32
    tile_lora: torch.Tensor,  # [P // block_m] int32
    base: torch.Tensor,  # [T, N] bf16 view
    y: torch.Tensor,  # [T, N] bf16 view, written
    stride_l: int,  # B rows per adapter
    off: int,  # B row of this slice's first output column
    block_m: hl.constexpr,
) -> None:
    T = y.size(0)
    N = y.size(1)
    R = hl.specialize(xa.size(1))
    P = sorted_ids.size(0)
    for tile_m, tile_n in hl.tile([P, N], block_size=[block_m, None]):
        tok = sorted_ids[tile_m]
        valid = tok < T
        tok = torch.where(valid, tok, 0)
        lora = tile_lora[tile_m.id]
        bv = hl.load(base, [tok, tile_n], extra_mask=valid[:, None]).to(torch.float32)
        if lora >= 0:
            rows = lora * stride_l + off + tile_n.index
            acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
            for tile_k in hl.tile(R):
                av = hl.load(xa, [tok, tile_k], extra_mask=valid[:, None]).to(b.dtype)
                acc = hl.dot(av, b[rows, tile_k].T, acc=acc)
            sc = hl.load(scalings, [lora])
            hl.store(y, [tok, tile_n], (bv + acc * sc).to(y.dtype), extra_mask=valid[:, None])
        else:
            hl.store(y, [tok, tile_n], bv.to(y.dtype), extra_mask=valid[:, None])


def lora_layout(mapping: torch.Tensor, num_loras: int, block_m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted_ids [P] int32, tile_lora [P // block_m] int32) from the [T] adapter-per-token map (-1 = base)."""
    ids = (mapping.to(torch.int64) + 1).view(-1, 1)
    sorted_ids, groups, _ = align_block_size(ids, num_loras + 1, block_m)
    return sorted_ids, (groups - 1).to(torch.int32)


def lora_block_m(t: int) -> int:
    """Token rows of a block: 16 in decode (adapter runs are short), up to 64 for prefill."""
    if t <= 64:
        return 16
    if t <= 512:
        return 32
    return 64


def shrink_split(t: int, h: int, slices: int, bk: int, num_loras: int) -> int:
    """K splits for small batches: enough (block, slice, split) programs for ~1 wave on the SMs, each split at
    least 2 K tiles (decode's few token blocks would otherwise leave most SMs idle on a long H loop)."""
    blocks = min((t + 15) // 16 + 1, t + 1, num_loras + 1) * slices
    split = 1
    while blocks * split * 2 <= sm_count() and h // (split * 2) >= 2 * bk:
        split *= 2
    return split


def shrink_configs(t: int, h: int, r_cols: int, slices: int, num_loras: int) -> dict:
    """block_m (host key) + [R tile, K tile]: the whole rank in one tile (x read once), K tiles of 128-256; for
    small batches a split-K variant (`split_k` host key) plus its reduce."""
    bm = lora_block_m(t)
    br = pow2_at_most(256, r_cols, floor=16)
    bk = pow2_at_most(256 if bm <= 16 and br <= 64 else (128 if br <= 128 else 64), h, floor=16)
    warps = 4 if bm * br <= 2048 else 8
    per_stage = (bm + br) * bk * 2  # bf16 x and A tiles in shared memory
    stages = max(2, min(4, (160 * 1024) // per_stage))
    split = shrink_split(t, h, slices, bk, num_loras) if t <= 256 else 1
    if split == 1:
        return {"lora_shrink_kernel": {"block_m": bm, "split_k": 1, "block_sizes": [br, bk], "num_warps": warps,
                                       "num_stages": stages}}
    return {"lora_shrink_split_kernel": {"block_m": bm, "split_k": split, "block_sizes": [br, bk],
                                         "num_warps": warps, "num_stages": stages},
            "lora_shrink_reduce": {"block_sizes": [pow2_at_most(32, t * slices, floor=1),
                                                   pow2_at_most(256, r_cols, floor=16)], "num_warps": 4}}


def expand_config(t: int, n: int, r: int) -> dict:
    """block_m + [N tile, R tile]: the rank in one K step; N tiles shrink until ~2 waves of programs."""
    bm = lora_block_m(t)
    blocks = (t + bm - 1) // bm + 1
    bn = fill_sms(pow2_at_most(256 if bm <= 16 else 128, n, floor=16), 32, lambda b: blocks * ((n + b - 1) // b))
    return {"block_m": bm, "block_sizes": [bn, pow2_at_most(128, r, floor=16)],
            "num_warps": 4 if bm * bn <= 4096 else 8, "num_stages": 2}


# --------------------------------------------------------------------------------------------------------------
# Port bases (each port file subclasses one and imports the kernels it launches, so the kit finds them)
# --------------------------------------------------------------------------------------------------------------

from collections.abc import Mapping  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from harness.spec import Case, Inputs, Outputs  # noqa: E402
from harness.specs.lora._common import LAYER_SLICES, slice_widths  # noqa: E402
from ports._port import Configs, HelionPort, Launch  # noqa: E402

ROUTING_NOTE = "tokens sorted by adapter and padded to block_m in prepare (integer mapping only)"


class _LoraPort(HelionPort):
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    host_keys: ClassVar[tuple[str, ...]] = ("block_m", "split_k")

    def _layout(self, inputs: Inputs, num_loras: int, entry: Mapping[str, Any]) -> tuple[int, torch.Tensor,
                                                                                           torch.Tensor]:
        bm = int(entry["block_m"])
        sorted_ids, tile_lora = lora_layout(inputs["mapping"], num_loras, bm)
        return bm, sorted_ids, tile_lora


def shrink_launches(port: _LoraPort, inputs: Inputs, x: torch.Tensor, a_flat: torch.Tensor, out2d: torch.Tensor,
                    scale: float, nl: int, configs: Configs) -> list[Launch]:
    """The shrink's launches: one kernel, or (split_k > 1) the split kernel into an fp32 partial buffer and the
    reduce that sums the splits, scales and casts."""
    t, h = x.shape
    if "lora_shrink_split_kernel" not in configs:
        bm, sorted_ids, tile_lora = port._layout(inputs, nl, configs["lora_shrink_kernel"])
        return [Launch(lora_shrink_kernel, (x, a_flat, sorted_ids, tile_lora, out2d, scale, nl, bm))]
    entry = configs["lora_shrink_split_kernel"]
    bm, sorted_ids, tile_lora = port._layout(inputs, nl, entry)
    split = int(entry["split_k"])
    bk = int(entry["block_sizes"][1])
    k_per = -(-h // (split * bk)) * bk
    split = -(-h // k_per)
    part = torch.empty(split, out2d.shape[0], out2d.shape[1], dtype=torch.float32, device=x.device)
    return [Launch(lora_shrink_split_kernel, (x, a_flat, sorted_ids, tile_lora, part, nl, k_per, bm)),
            Launch(lora_shrink_reduce, (part, out2d, scale))]


class VllmShrinkPort(_LoraPort):
    """vLLM lora_shrink: x [T, H], A [S, L, r, H] -> out [S, T, r] fp32, scaled."""

    notes: ClassVar[tuple[str, ...]] = (ROUTING_NOTE, "one launch: all slices in the grid, scale in the epilogue, "
                                        "base-model rows written 0 without reading x")

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return shrink_configs(int(dims["T"]), int(dims["H"]), int(dims["r"]), int(dims["S"]), int(dims["L"]))

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, a = inputs["x"], inputs["lora_a"]
        s, nl, r, h = a.shape
        t = x.shape[0]
        if tuple(out.shape) != (s, t, r) or x.shape[1] != h:
            raise ValueError(f"bad shapes x {tuple(x.shape)} A {tuple(a.shape)} out {tuple(out.shape)}")
        return shrink_launches(self, inputs, x, a.reshape(s * nl * r, h), out.view(s * t, r),
                               float(inputs["scale"]), nl, configs)


class VllmExpandPort(_LoraPort):
    """vLLM lora_expand: buf [S, T, r] fp32, B [S, L, N, r], base [T, S*N] -> y [T, S*N] bf16."""

    notes: ClassVar[tuple[str, ...]] = (ROUTING_NOTE, "base read and y written in the expand's pass (no copy "
                                        "launch); one launch per slice; base-model rows copy base")

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"lora_expand_kernel": expand_config(int(dims["T"]), int(dims["N"]), int(dims["r"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        buf, b, base = inputs["buf"], inputs["lora_b"], inputs["base"]
        s, nl, n, r = b.shape
        t = buf.shape[1]
        if tuple(buf.shape) != (s, t, r) or tuple(base.shape) != (t, s * n) or out.shape != base.shape:
            raise ValueError(f"bad shapes buf {tuple(buf.shape)} B {tuple(b.shape)} base {tuple(base.shape)}")
        bm, sorted_ids, tile_lora = self._layout(inputs, nl, configs["lora_expand_kernel"])
        ones = torch.ones(nl, dtype=torch.float32, device=base.device)
        bf = b.reshape(s * nl * n, r)
        return [Launch(lora_expand_kernel, (buf[i], bf, ones, sorted_ids, tile_lora, base[:, i * n:(i + 1) * n],
                                            out[:, i * n:(i + 1) * n], n, i * nl * n, bm)) for i in range(s)]


class SglangShrinkPort(_LoraPort):
    """SGLang shrink: x [T, H], A [L, S*r, H] -> out [T, S*r] bf16, unscaled."""

    notes: ClassVar[tuple[str, ...]] = (ROUTING_NOTE, "one launch over all stacked slices; base-model rows "
                                        "written 0 without reading x")

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        cols = LAYER_SLICES[dims["layer"]] * int(dims["r"])
        return shrink_configs(int(dims["T"]), int(dims["H"]), cols, 1, int(dims["L"]))

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        x, a = inputs["x"], inputs["lora_a"]
        nl, cols, h = a.shape
        t = x.shape[0]
        if tuple(out.shape) != (t, cols) or x.shape[1] != h:
            raise ValueError(f"bad shapes x {tuple(x.shape)} A {tuple(a.shape)} out {tuple(out.shape)}")
        return shrink_launches(self, inputs, x, a.reshape(nl * cols, h), out, 1.0, nl, configs)


class SglangExpandPort(_LoraPort):
    """SGLang expand: xa [T, S*r], B [L, sum N_s, r], base [T, sum N_s] -> y = base + scaling * xa_s @ B_s.T."""

    notes: ClassVar[tuple[str, ...]] = (ROUTING_NOTE, "base read and y written in the expand's pass (no copy "
                                        "launch); one launch per slice; scaling applied in fp32, one rounding")

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"lora_expand_kernel": expand_config(int(dims["T"]), max(slice_widths(dict(dims))), int(dims["r"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        xa, b, base = inputs["xa"], inputs["lora_b"], inputs["base"]
        nl, ntot, r = b.shape
        widths = slice_widths(dict(case.params))
        t = xa.shape[0]
        if sum(widths) != ntot or tuple(xa.shape) != (t, len(widths) * r) or tuple(base.shape) != (t, ntot):
            raise ValueError(f"bad shapes xa {tuple(xa.shape)} B {tuple(b.shape)} base {tuple(base.shape)}")
        bm, sorted_ids, tile_lora = self._layout(inputs, nl, configs["lora_expand_kernel"])
        scal = torch.tensor(inputs["scalings"], dtype=torch.float32, device=base.device)
        bf = b.reshape(nl * ntot, r)
        steps, off = [], 0
        for i, n in enumerate(widths):
            steps.append(Launch(lora_expand_kernel, (xa[:, i * r:(i + 1) * r], bf, scal, sorted_ids, tile_lora,
                                                     base[:, off:off + n], out[:, off:off + n], ntot, off, bm)))
            off += n
        return steps
