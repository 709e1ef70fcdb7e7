"""Helion port of the causal depthwise conv1d + SiLU prefill, varlen (catalog row 85; vLLM 0.33.0 `causal_conv1d_fn`
/ `_causal_conv1d_fwd_kernel`, SGLang's Triton `causal_conv1d_fn`).

Per packed sequence [s, e), channel c, token t (zeros before s):

    y[t, c] = silu(bias[c] + sum_{j < W} w[c, j] x[t - (W - 1) + j, c]);   state[n, c, :] = x[e - (W - 1) .. e - 1, c]
    x [L, dim] token-major; weight [dim, W]; bias [dim]; query_start_loc [batch + 1] -> y [L, dim],
    conv_state [batch, dim, W - 1]

One launch, two loops (Helion gives each top-level loop its own range of program ids):
* [token, channel] tiles, token-major (contiguous 16-byte channel vectors, the layout serving holds): each tile
  reads its W shifted row blocks (the overlap hits L1/L2, so DRAM sees x about once), sums in fp32, applies SiLU.
  Only loads precede the one store, so all W row blocks are in flight together.
* [sequence, channel] tiles: each sequence's last W - 1 inputs (zero-padded before the sequence) as its conv state.
  Writing the state from the token tiles instead (masked to each sequence's last token) cost three masked scalar
  stores per element and, since a load cannot pass a possibly aliasing store, serialized the row-block loads.
The token -> sequence map is built from query_start_loc in prepare (integer structure, no host sync).
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
def conv1d_fwd_kernel(
    x: torch.Tensor,  # [L, dim]
    weight: torch.Tensor,  # [dim, W]
    bias: torch.Tensor,  # [dim]
    seq_of: torch.Tensor,  # [L] int32: the sequence of each token
    qsl: torch.Tensor,  # [batch + 1] int32 sequence starts
    y: torch.Tensor,  # [L, dim] written
    state: torch.Tensor,  # [batch, dim, W - 1] written
) -> None:
    L, dim = x.size(0), x.size(1)
    batch = state.size(0)
    width = hl.specialize(weight.size(1))
    for tile_t, tile_d in hl.tile([L, dim]):
        start = qsl[seq_of[tile_t]]  # [BT]
        acc = hl.zeros([tile_t, tile_d], dtype=torch.float32) + bias[tile_d].to(torch.float32)[None, :]
        for j in hl.static_range(width):
            src = tile_t.index - (width - 1) + j  # [BT]; <= t, so inside x wherever the row is
            valid = src >= start
            xv = hl.load(x, [torch.where(valid, src, 0), tile_d], extra_mask=valid[:, None])  # [BT, BD]
            acc = acc + xv.to(torch.float32) * weight[tile_d, j].to(torch.float32)[None, :]
        y[tile_t, tile_d] = (acc * torch.sigmoid(acc)).to(y.dtype)
    for tile_n, tile_c in hl.tile([batch, dim]):
        first = qsl[tile_n]  # [BN]
        end = qsl[tile_n + 1]
        for j in hl.static_range(width - 1):
            src = end - (width - 1) + j
            valid = src >= first
            state[tile_n, tile_c, j] = hl.load(x, [torch.where(valid, src, 0), tile_c], extra_mask=valid[:, None])


def conv_fwd_config(tokens: int, dim: int) -> dict[str, Any]:
    """[32 tokens, 128 channels] tiles, 4 warps (32 elements per thread), rows halved until there are >= 2
    programs per SM, warps with them.  H200, T = 2048, dim = 2048 (scripts/probes/shortfalls.sh, 2026-12-03): the
    same [32, 128] tile at 8 warps took 21.5 us, at 4 warps 13.4 us ([16, 128] / 4: 13.1 us, shipped for that
    bucket; SGLang 19.7 us).  The state loop: a [1, 256] channel block (as in those measurements)."""
    bd = pow2_at_most(128, dim, floor=16)
    bt = fill_sms(pow2_at_most(32, tokens, floor=1), 1, lambda t: -(-tokens // t) * -(-dim // bd))
    nw = max(1, min(4, bt * bd // 1024))
    return {"block_sizes": [bt, bd, 1, pow2_at_most(256, dim, floor=32)], "num_warps": nw, "num_stages": 1}


class HelionCausalConv1d(HelionPort):
    kernel: ClassVar[str] = "causal_conv1d"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch, two loops: W-tap fp32 sum + SiLU per [token, channel] tile, and each sequence's conv state per "
        "[sequence, channel] tile; token -> sequence map built in prepare",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"conv1d_fwd_kernel": conv_fwd_config(int(dims["batch"]) * int(dims["T"]), int(dims["dim"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x, qsl = inputs["x"], inputs["query_start_loc"].to(torch.int32)
        batch = qsl.numel() - 1
        seq_ids = torch.arange(batch, dtype=torch.int32, device=x.device)
        seq_of = torch.repeat_interleave(seq_ids, (qsl[1:] - qsl[:-1]).long(), output_size=x.shape[0])
        args = (x, inputs["weight"], inputs["bias"], seq_of, qsl, out["y"], out["conv_state"])
        return [Launch(conv1d_fwd_kernel, args, adjust=rows_block(x.shape[0]))]


IMPL = HelionCausalConv1d()

if __name__ == "__main__":
    check_main(IMPL)
