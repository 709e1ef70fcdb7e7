"""Helion port of per-request temperature scaling (catalog row 50; vLLM v1 GPU worker `_temperature_kernel` via
`apply_temperature`, sample/gumbel.py).

    out[t, v] = logits[t, v] / T[mapping[t]]   (rows with T = 0 or 1 copied unchanged)    [B, V] fp32 -> [B, V] fp32

Fusion: the upstream kernel works in place, so its call is `out.copy_(logits)` then the kernel (4 passes of
B*V*4 bytes).  Here one kernel reads the logits and writes the scaled (or copied) row straight into the output
buffer: 2 passes, half the spec's byte count.  Exact fp32 division (skipped rows divide by 1: bit-exact copy).
Tiles: [1 row, BLOCK_V columns] (16-byte vector accesses), the per-row temperature gathered once per tile.
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
def temperature_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    mapping: torch.Tensor,  # [B] int32 request-state slot of each row
    temperature: torch.Tensor,  # [MAX_NUM_REQS] fp32
    out: torch.Tensor,  # [B, V] fp32, written
) -> None:
    B, V = logits.size(0), logits.size(1)
    for tile_b, tile_v in hl.tile([B, V]):
        t = temperature[mapping[tile_b]]  # [tile_b]
        skip = (t == 0.0) | (t == 1.0)
        scale = torch.where(skip, torch.ones_like(t), t)
        out[tile_b, tile_v] = logits[tile_b, tile_v] / scale[:, None]


def elementwise_rows_config(rows: int, cols: int, target: int = 4096) -> dict[str, Any]:
    """[rows, cols] tiles of ~`target` fp32 elements (16 KB read per program), columns first; narrower (down to
    1024 columns) while the grid would give < 2 programs per SM (small B)."""
    bn = pow2_at_most(fill_sms(target, 1024, lambda b: rows * -(-cols // b)), cols, floor=16)
    br = pow2_at_most(max(1, target // bn), rows) if cols < target else 1  # several rows only for short rows
    return {"block_sizes": [br, bn], "num_warps": 8 if br * bn >= 4096 else 4}


class HelionTemperature(HelionPort):
    kernel: ClassVar[str] = "temperature"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp32",)
    notes: ClassVar[tuple[str, ...]] = ("one pass logits -> out (the upstream copies then scales in place)",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"temperature_kernel": elementwise_rows_config(int(dims["B"]), int(dims["V"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        return [Launch(temperature_kernel, (inputs["logits"], inputs["mapping"], inputs["temperature"], out))]


IMPL = HelionTemperature()

if __name__ == "__main__":
    check_main(IMPL)
