"""Helion port of AWQ int4 weight dequantization (catalog rows 59 vLLM `awq_dequantize_kernel`, 60 SGLang
`awq_dequantize_kernel`; group G along K).

    W[k, n] = (w4[k, n] - z4[k // G, n]) * s[k // G, n]
    qweight [K, N/8] int32, qzeros [K/G, N/8] int32, scales [K/G, N] fp16 -> W [K, N] fp16

8 nibbles per int32 in AutoAWQ's interleaved order: logical column j of a pack sits at bits
4 * (j // 2 + 4 * (j % 2)).  Each program owns a [bk, bp] tile of packed words, expands it to [bk, bp, 8] in
registers and stores it through the [K, N/8, 8] view of W (one aligned 16-byte vector per word); zeros and scales
come from row k // G (gathered per row, cached: 1/G of the traffic).  Memory-bound: 0.5 B in + 2 B out per
weight; fp32 math, one fp16 rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms_2d, pow2_at_most


@helion.kernel(static_shapes=False)
def awq_dequant_kernel(
    qweight: torch.Tensor,  # [K, NP] int32 (NP = N / 8)
    qzeros: torch.Tensor,  # [K / G, NP] int32
    scales: torch.Tensor,  # [K / G, NP, 8] fp16 view of [K / G, N]
    out: torch.Tensor,  # [K, NP, 8] fp16 view of W [K, N], written
    group: int,  # G
) -> None:
    K, NP = qweight.size(0), qweight.size(1)
    # the 8 columns of a word and the word stride are compile-time constants: each word's 8 outputs are one
    # aligned 16-byte vector (a runtime stride 8 would hide that from Triton's alignment analysis)
    hl.specialize(out.size(2))
    hl.specialize(out.stride(1))
    hl.specialize(scales.stride(1))
    for tile_k, tile_p in hl.tile([K, NP]):
        j = hl.arange(8)
        shift = (j // 2) * 4 + (j % 2) * 16  # [8] bit offset of logical column j
        gk = tile_k.index // group  # [bk] group row of each k
        w = qweight[tile_k, tile_p]
        z = qzeros[gk, tile_p]
        sc = scales[gk, tile_p, :].to(torch.float32)
        wv = (w[:, :, None] >> shift[None, None, :]) & 15
        zv = (z[:, :, None] >> shift[None, None, :]) & 15
        out[tile_k, tile_p, :] = ((wv - zv).to(torch.float32) * sc).to(out.dtype)


def awq_config(k: int, np_: int, target: int = 1024) -> dict[str, Any]:
    """[bk, bp] tiles of ~`target` packed words (8x as many fp16 outputs: 16 KB written per program at 1024):
    packed columns first (contiguous), the rest in rows; smaller while under ~4 programs per SM."""
    bp = pow2_at_most(128, np_)
    bk, bp = fill_sms_2d(pow2_at_most(max(1, target // bp), k), bp, k, np_, 64)
    return {"block_sizes": [bk, bp], "num_warps": 8 if bk * bp >= 512 else 4, "num_stages": 1}


class HelionAwqDequantize(HelionPort):
    kernel: ClassVar[str] = "awq_dequantize"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp16",)
    notes: ClassVar[tuple[str, ...]] = ("one pass: nibbles unpacked in registers, zeros/scales per group row, "
                                        "written straight into the output (no copy)",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"awq_dequant_kernel": awq_config(int(dims["K"]), int(dims["N"]) // 8)}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        qw, qz, s = inputs["qweight"], inputs["qzeros"], inputs["scales"]
        assert isinstance(out, torch.Tensor) and out.is_contiguous() and s.is_contiguous()
        k, np_ = qw.shape
        group = k // s.shape[0]
        return [Launch(awq_dequant_kernel, (qw, qz, s.view(-1, np_, 8), out.view(k, np_, 8), group))]


IMPL = HelionAwqDequantize()

if __name__ == "__main__":
    check_main(IMPL)
