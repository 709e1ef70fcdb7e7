"""Shared pieces of the per-token-group activation-quantization ports (fp8 / int8, row-major or column-major
scales): the per-group quantize kernels, their tile heuristic, and the port base.

Group kernels: x [T, H] bf16 is viewed [T, NG, G] (NG = H / G groups of G columns, no copy); each program owns a
[bt, bg] tile of (token, group) pairs, i.e. a [bt, bg, G] block of x: it reads the block once, takes the fp32
|x| max per group (last axis), writes the fp32 scale per group and the quantized block.  q is written through
the same [T, NG, G] view; s through a [T, NG] view whose strides give the layout (row-major [T, NG], or
column-major [NG, T4] storage seen transposed).

Outputs: the kernels write the spec's "q" [T, H] and "s" [T, NG] buffers directly (whatever strides the spec gives
s); the timed call is the one kernel launch, no epilogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, fill_sms_2d, pow2_at_most, rows_block


@helion.kernel(static_shapes=False)
def group_quant_fp8_kernel(
    x: torch.Tensor,  # [T, NG, G] bf16 view of the activations
    q: torch.Tensor,  # [T, NG, G] float8_e4m3fn, written
    s: torch.Tensor,  # [T, NG] fp32 scales (any strides), written
) -> None:
    T, NG = s.size(0), s.size(1)
    G = hl.specialize(x.size(2))
    for tile_t, tile_g in hl.tile([T, NG]):
        xb = x[tile_t, tile_g, 0:G].to(torch.float32)
        amax = torch.amax(torch.abs(xb), dim=-1)
        sc = torch.clamp_min(amax, 1e-10) * (1.0 / 448.0)  # vLLM: amax * (1 / 448), then x / s
        qv = torch.clamp(xb / sc[:, :, None], -448.0, 448.0)
        q[tile_t, tile_g, 0:G] = qv.to(q.dtype)
        s[tile_t, tile_g] = sc


@helion.kernel(static_shapes=False)
def group_quant_int8_kernel(
    x: torch.Tensor,  # [T, NG, G] bf16 view of the activations
    q: torch.Tensor,  # [T, NG, G] int8, written
    s: torch.Tensor,  # [T, NG] fp32 scales (any strides), written
) -> None:
    T, NG = s.size(0), s.size(1)
    G = hl.specialize(x.size(2))
    for tile_t, tile_g in hl.tile([T, NG]):
        xb = x[tile_t, tile_g, 0:G].to(torch.float32)
        amax = torch.amax(torch.abs(xb), dim=-1)
        sc = torch.clamp_min(amax, 1e-10) / 127.0
        qv = torch.clamp(xb / sc[:, :, None], -128.0, 127.0)
        q[tile_t, tile_g, 0:G] = qv.to(q.dtype)  # float -> int8 cast truncates toward zero, as upstream
        s[tile_t, tile_g] = sc


def group_config(t: int, ng: int, g: int, target: int = 8192) -> dict[str, Any]:
    """[bt, bg] (token, group) tiles of ~`target` elements (16 KB of bf16 in, 8 KB of q out per program at 8192).
    bg: the largest power of two dividing NG within the budget (NG = 56 for H = 7168 -> 8: no masked groups),
    or NG's power-of-two ceiling when NG is odd; the rest of the budget in tokens.  Tiles shrink while there are
    fewer than ~4 programs per SM (small T), never below one group; warps so each thread holds >= 8 elements
    (16-byte bf16 vectors), at most 8."""
    cap = max(1, target // g)
    bg = min(ng & -ng, cap) if ng > 0 else 1
    if bg == 1:
        bg = pow2_at_most(cap, ng)
    bt, bg = fill_sms_2d(pow2_at_most(max(1, target // (g * bg)), t), bg, t, ng, 1)
    elems = bt * bg * g
    return {"block_sizes": [bt, bg], "num_warps": min(8, max(1, elems // 256)),
            "num_stages": 1}


class GroupQuantPort(HelionPort):
    """Per-token-group quantization: one launch of `quant_kernel` on (x [T, NG, G], q [T, NG, G], s [T, NG]), q and s
    being views of the spec's "q" / "s" buffers (s column-major for the colmajor spec: its buffer's strides)."""

    dtypes = ("bf16",)
    quant_kernel: helion.Kernel

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        t, h, g = int(dims["T"]), int(dims["H"]), int(dims["G"])
        return {self.quant_kernel.name: group_config(t, h // g, g)}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x, g = inputs["x"], int(case.params["G"])
        t, h = x.shape
        if h % g or not x.is_contiguous():
            raise ValueError(f"x must be contiguous [T, H] with H a multiple of G={g}, got {tuple(x.shape)}")
        ng = h // g
        q, s = out["q"], out["s"]
        assert q.is_contiguous() and tuple(s.shape) == (t, ng), (tuple(q.shape), tuple(s.shape))
        return [Launch(self.quant_kernel, (x.view(t, ng, g), q.view(t, ng, g), s), adjust=rows_block(t))]
