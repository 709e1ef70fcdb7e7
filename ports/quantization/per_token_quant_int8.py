"""Helion port of per-token INT8 quantization (catalog row 61, vLLM `_per_token_quant_int8` via
`per_token_quant_int8`, int8_utils).

    a[t] = max(max_j |x[t, j]|, 1e-10);  s[t] = a[t] / 127;  q[t, j] = int8(round(x[t, j] * (127 / a[t])))
    x [T, H] bf16 -> q [T, H] int8, s [T, 1] fp32 (the spec's "q" / "s" outputs, written directly)

round = CUDA libdevice round (halves away from zero), computed as trunc(v +- 0.5), bit-identical to the spec's
reference sign(v) * floor(|v| + 0.5).  One pass over x (the whole row sits in registers: a persistent reduction
over H), memory-bound (2 B in, 1 B out per element); rows per program chosen so a program moves >= ~8K elements
when H is small and there are enough rows to fill the GPU.  The timed call is that one launch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, pow2_at_most, rows_block, sm_count


@helion.kernel(static_shapes=False)
def token_quant_int8_kernel(
    x: torch.Tensor,  # [T, H] bf16
    q: torch.Tensor,  # [T, H] int8, written
    s: torch.Tensor,  # [T] fp32 view of the [T, 1] scales, written
) -> None:
    T = x.size(0)
    for tile_t in hl.tile(T):
        xb = x[tile_t, :].to(torch.float32)
        amax = torch.clamp_min(torch.amax(torch.abs(xb), dim=-1), 1e-10)
        v = xb * (torch.full_like(amax, 127.0) / amax)[:, None]
        # round half away from zero = trunc(v +- 0.5): bit-identical to sign(v) * floor(|v| + 0.5); the float ->
        # int8 cast truncates (|v| <= 127, so no overflow)
        q[tile_t, :] = (v + torch.where(v < 0, -0.5, 0.5)).to(q.dtype)
        s[tile_t] = amax / 127.0


def token_config(t: int, h: int, target: int = 8192) -> dict[str, Any]:
    """Rows per program: ~`target` elements per program (whole rows), fewer while under ~4 programs per SM;
    warps by the row block's size (16-byte vectors: 8 bf16 per thread per access)."""
    hp = pow2_at_most(1 << 20, h)
    bt = pow2_at_most(max(1, target // hp), t)
    while bt > 1 and -(-t // bt) < 4 * sm_count():
        bt //= 2
    elems = bt * hp
    return {"block_sizes": [bt], "reduction_loops": [None],
            "num_warps": min(8, max(1, elems // 256)),
            "num_stages": 1}


class HelionPerTokenQuantInt8(HelionPort):
    kernel: ClassVar[str] = "per_token_quant_int8"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one pass: whole rows in registers (persistent amax), round half away from zero, several rows per program "
        "for small H, writing the spec's q / s buffers",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"token_quant_int8_kernel": token_config(int(dims["T"]), int(dims["H"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x = inputs["x"]
        t = x.shape[0]
        return [Launch(token_quant_int8_kernel, (x, out["q"], out["s"].view(t)), adjust=rows_block(t))]


IMPL = HelionPerTokenQuantInt8()

if __name__ == "__main__":
    check_main(IMPL)
