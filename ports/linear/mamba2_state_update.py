"""Helion port of the Mamba-2 selective state update, one decode step (catalog row 84; mamba_ssm 2.3.2
`selective_state_update` / `_selective_scan_update_kernel`, vLLM 0.33.0's and SGLang's forks).

Per request b, head h (group g = h // (H / G)), state S [P, N]:

    d = softplus(dt + dt_bias_h);  S <- exp(d A_h) S + d x B^T;  y = S C + D_h x
    state [batch, H, P, N]; x [batch, H, P]; dt [batch, H]; A, D, dt_bias [H] fp32; B, C [batch, G, N]
    -> y [batch, H, P], new state [batch, H, P, N] (state dtype)

One launch: a program per (request, head, P block) holds the [BP, N] state block in registers (rows of S are
independent), fp32 math; the old state is read from the input and the new one written to the output buffer
(no in-place restore copy), so the traffic is one state read + one state write.  y uses the fp32 state before
its rounding to the state dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, fill_sms, pow2_at_most


@helion.kernel(static_shapes=False)
def mamba2_state_update_kernel(
    state: torch.Tensor,  # [batch, H, P, N] read
    x: torch.Tensor,  # [batch, H, P]
    dt: torch.Tensor,  # [batch, H] raw
    A: torch.Tensor,  # [H] fp32
    B: torch.Tensor,  # [batch, G, N]
    C: torch.Tensor,  # [batch, G, N]
    D: torch.Tensor,  # [H] fp32
    dt_bias: torch.Tensor,  # [H] fp32
    y: torch.Tensor,  # [batch, H, P] written
    new_state: torch.Tensor,  # [batch, H, P, N] written
) -> None:
    batch, H, P = x.size(0), x.size(1), x.size(2)
    hl.specialize(state.size(3))  # N: whole state rows per tile
    group = H // B.size(1)
    block_p = hl.register_block_size(P)
    for tile_b, tile_h, tile_p in hl.tile([batch, H, P], block_size=[1, 1, block_p]):
        i_b = tile_b.begin
        i_h = tile_h.begin
        i_g = i_h // group
        d = dt[i_b, i_h].to(torch.float32) + dt_bias[i_h].to(torch.float32)
        d = torch.where(d > 20.0, d, torch.log1p(torch.exp(d)))  # softplus, threshold 20 as the upstreams
        decay = torch.exp(d * A[i_h].to(torch.float32))
        b_x = x[i_b, i_h, tile_p].to(torch.float32)  # [BP]
        b_b = B[i_b, i_g, :].to(torch.float32)  # [N]
        b_c = C[i_b, i_g, :].to(torch.float32)
        s = state[i_b, i_h, tile_p, :].to(torch.float32) * decay + (d * b_x)[:, None] * b_b[None, :]  # [BP, N]
        new_state[i_b, i_h, tile_p, :] = s.to(new_state.dtype)
        out = torch.sum(s * b_c[None, :], dim=1) + D[i_h].to(torch.float32) * b_x
        y[i_b, i_h, tile_p] = out.to(y.dtype)


class HelionMamba2StateUpdate(HelionPort):
    kernel: ClassVar[str] = "mamba2_state_update"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one launch: [BP, N] state block in registers, fp32 math, old state read from the input and the new one "
        "written to the output (no restore copy)",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        heads, p, n = int(dims["batch"]) * int(dims["H"]), int(dims["P"]), int(dims["N"])
        bp = fill_sms(pow2_at_most(64, p, floor=4), 4, lambda b: heads * -(-p // b))  # >= 2 programs per SM
        warps = 8 if bp * n >= 4096 else 4
        return {"mamba2_state_update_kernel": {"block_sizes": [bp], "num_warps": warps, "num_stages": 1}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        args = (inputs["state"], inputs["x"], inputs["dt"], inputs["A"], inputs["B"], inputs["C"], inputs["D"],
                inputs["dt_bias"], out["y"], out["state"])
        return [Launch(mamba2_state_update_kernel, args)]


IMPL = HelionMamba2StateUpdate()

if __name__ == "__main__":
    check_main(IMPL)
