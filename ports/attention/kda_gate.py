"""Helion port of the KDA (Kimi Delta Attention) forget gate (catalog row 8, fla `kda_gate_fwd_kernel` via
`fla.ops.kda.gate.fused_kda_gate`, lower_bound None).

    out[t, h, k] = -exp(A_log[h]) * softplus(g[t, h, k] + dt_bias[h * K + k])
    g [T, H, K] bf16/fp16, A_log [H] fp32, dt_bias [H * K] fp32 -> out [T, H, K] fp32

One elementwise pass, memory-bound ((elt + 4) bytes per element; the [H, K] bias and [H] decay rates stay in
L2).  Tiles are [tokens, heads, K] so the per-head rate is a plain [heads] load (no index division); softplus
is fp32 log1p(exp(x)) with the usual x > 20 -> x cut-off (exact in fp32).  The output goes straight into the
bench buffer (the upstream launcher allocates and is copied).
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
def kda_gate_kernel(
    g: torch.Tensor,  # [T, H, K] bf16/fp16
    a_log: torch.Tensor,  # [H] fp32
    dt_bias: torch.Tensor,  # [H, K] fp32 (view of [H * K])
    out: torch.Tensor,  # [T, H, K] fp32, written
) -> None:
    T, H, K = out.size(0), out.size(1), out.size(2)
    for tile_t, tile_h, tile_k in hl.tile([T, H, K]):
        x = g[tile_t, tile_h, tile_k].to(torch.float32) + dt_bias[tile_h, tile_k][None, :, :]
        sp = torch.where(x > 20.0, x, torch.log1p(torch.exp(x)))
        rate = -torch.exp(a_log[tile_h])  # [bh]
        out[tile_t, tile_h, tile_k] = sp * rate[None, :, None]


def gate_config(t: int, h: int, k: int, target: int = 4096) -> dict[str, Any]:
    """[tokens, heads, K] tiles of ~`target` elements: whole (pow2) K, then heads, then tokens (16 KB of fp32
    output per program at full size); fewer tokens per tile when the grid would leave SMs idle."""
    bk = pow2_at_most(256, k, floor=16)
    bh = pow2_at_most(max(1, target // bk), h)
    bt = pow2_at_most(max(1, target // (bk * bh)), t)
    while bt > 1 and -(-t // bt) * -(-h // bh) < 2 * 132:
        bt //= 2
    return {"block_sizes": [bt, bh, bk], "num_warps": 4 if bt * bh * bk <= 2048 else 8}


class HelionKdaGate(HelionPort):
    kernel: ClassVar[str] = "kda_gate"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16", "fp16")
    notes: ClassVar[tuple[str, ...]] = ("one elementwise pass over [t, h, K] tiles, fp32 math, written straight "
                                        "into the bench buffer",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"kda_gate_kernel": gate_config(int(dims["T"]), int(dims["H"]), int(dims["K"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        _, h, k = out.shape
        return [Launch(kda_gate_kernel, (inputs["g"], inputs["A_log"], inputs["dt_bias"].view(h, k), out))]


IMPL = HelionKdaGate()

if __name__ == "__main__":
    check_main(IMPL)
