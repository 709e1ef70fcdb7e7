"""Helion port of the causal depthwise conv1d + SiLU decode update (catalog row 85; vLLM 0.33.0
`causal_conv1d_update` / `_causal_conv1d_update_kernel`, SGLang's Triton `causal_conv1d_update`).

Per request b and channel c, cached window s [W - 1] (oldest first):

    y[b, c] = silu(bias[c] + sum_{j < W-1} w[c, j] s[b, c, j] + w[c, W-1] x[b, c]);   s' = (s[1:], x)
    x [batch, dim]; conv_state [batch, dim, W - 1]; weight [dim, W]; bias [dim] -> y [batch, dim], s' [batch, dim, W-1]

One launch over [batch, dim] tiles: the W - 1 cached taps are read once (tap by tap; the taps of a channel share
cache lines), the fp32 sum and SiLU computed in registers, and the shifted window written to the output state
(read from the input, written to the output: no in-place restore copy).
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
        for j in hl.static_range(width - 1):
            sj = conv_state[tile_b, tile_d, j]
            acc = acc + sj.to(torch.float32) * weight[tile_d, j].to(torch.float32)[None, :]
            if j > 0:
                new_state[tile_b, tile_d, j - 1] = sj
        new_state[tile_b, tile_d, width - 2] = xv
        y[tile_b, tile_d] = (acc * torch.sigmoid(acc)).to(y.dtype)


def conv_tile_config(rows: int, dim: int, max_rows: int = 8, max_cols: int = 256) -> dict[str, Any]:
    """[rows, channels] tiles for the short conv: channel block up to 256 (contiguous), up to 8 rows, shrunk
    (rows first, channels down to 64) until there are >= 2 programs per SM."""
    bd = pow2_at_most(max_cols, dim, floor=16)
    bb = fill_sms(pow2_at_most(max_rows, rows, floor=1), 1, lambda b: -(-rows // b) * -(-dim // bd))
    bd = fill_sms(bd, 64, lambda d: -(-rows // bb) * -(-dim // d))
    return {"block_sizes": [bb, bd], "num_warps": 4 if bb * bd >= 1024 else 2, "num_stages": 1}


class HelionCausalConv1dUpdate(HelionPort):
    kernel: ClassVar[str] = "causal_conv1d_update"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: W-tap fp32 sum + SiLU and the shifted window written to the output state (no restore copy)",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"conv1d_update_kernel": conv_tile_config(int(dims["batch"]), int(dims["dim"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x = inputs["x"]
        args = (x, inputs["conv_state"], inputs["weight"], inputs["bias"], out["y"], out["conv_state"])
        return [Launch(conv1d_update_kernel, args, adjust=rows_block(x.shape[0]))]


IMPL = HelionCausalConv1dUpdate()

if __name__ == "__main__":
    check_main(IMPL)
