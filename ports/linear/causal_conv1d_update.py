"""Helion port of the causal depthwise conv1d + SiLU decode update (catalog row 85; vLLM 0.33.0
`causal_conv1d_update` / `_causal_conv1d_update_kernel`, SGLang's Triton `causal_conv1d_update`).

Per request b and channel c, cached window s [W - 1] (oldest first):

    y[b, c] = silu(bias[c] + sum_{j < W-1} w[c, j] s[b, c, j] + w[c, W-1] x[b, c]);   s' = (s[1:], x)
    x [batch, dim]; conv_state [batch, dim, W - 1]; weight [dim, W]; bias [dim] -> y [batch, dim], s' [batch, dim, W-1]

One launch over [batch, dim] tiles, by default one request row and one channel per thread (the upstream's grid:
a program per request and channel block).  Every load comes before the first store: the stores may alias the inputs
as far as the compiler knows, so a tap loaded after a store could not be issued before that store's data had
arrived, and each tap would cost its own DRAM round trip (what the 8-row tiles of the first version did at
batch 512).  The shifted window is then written from a reload of the taps (L1 hits) to the output state (no
in-place restore copy).  One channel per thread keeps every access in one register layout: the state taps are
strided by W - 1, and a wider per-thread vector for x would need a shared-memory layout conversion per tap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most, rows_block


@helion.kernel(static_shapes=False)
def conv1d_update_kernel(
    x: torch.Tensor,  # [batch, dim]
    conv_state: torch.Tensor,  # [batch, dim, W - 1] read
    weight: torch.Tensor,  # [dim, W]
    bias: torch.Tensor,  # [dim]
    y: torch.Tensor,  # [batch, dim] written
    new_state: torch.Tensor,  # [batch, dim, W - 1] written
) -> None:
    batch, dim = x.size(0), x.size(1)
    width = hl.specialize(weight.size(1))
    for tile_b, tile_d in hl.tile([batch, dim]):
        xv = x[tile_b, tile_d]
        acc = bias[tile_d].to(torch.float32)[None, :] + weight[tile_d, width - 1].to(torch.float32)[None, :] * xv.to(
            torch.float32)
        for j in hl.static_range(width - 1):  # loads only: all taps in flight at once
            acc = acc + conv_state[tile_b, tile_d, j].to(torch.float32) * weight[tile_d, j].to(torch.float32)[None, :]
        y[tile_b, tile_d] = (acc * torch.sigmoid(acc)).to(y.dtype)
        for j in hl.static_range(width - 1):  # the shifted window; the reloads hit the lines loaded above
            if j < width - 2:
                new_state[tile_b, tile_d, j] = conv_state[tile_b, tile_d, j + 1]
            else:
                new_state[tile_b, tile_d, j] = xv


def conv_update_config(batch: int, dim: int, max_cols: int = 256) -> dict[str, Any]:
    """One request row, a channel block of up to 256 with one channel per thread (num_warps = block / 32), halved
    (not below one warp) until there are >= 2 programs per SM."""
    bd = fill_sms(pow2_at_most(max_cols, dim, floor=32), 32, lambda d: batch * -(-dim // d))
    return {"block_sizes": [1, bd], "num_warps": bd // 32, "num_stages": 1}


class HelionCausalConv1dUpdate(HelionPort):
    kernel: ClassVar[str] = "causal_conv1d_update"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: W-tap fp32 sum + SiLU and the shifted window written to the output state (no restore copy); "
        "all taps loaded before the first store",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"conv1d_update_kernel": conv_update_config(int(dims["batch"]), int(dims["dim"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x = inputs["x"]
        args = (x, inputs["conv_state"], inputs["weight"], inputs["bias"], out["y"], out["conv_state"])
        return [Launch(conv1d_update_kernel, args, adjust=rows_block(x.shape[0]))]


IMPL = HelionCausalConv1dUpdate()

if __name__ == "__main__":
    check_main(IMPL)
