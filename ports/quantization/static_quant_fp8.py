"""Helion port of static (per-tensor, calibrated-scale) FP8 quantization (catalog row 69, SGLang
`static_quant_fp8`, kernels/ops/quantization/fp8_kernel.py).

    q[t, j] = fp8_e4m3(clamp(x[t, j] * (1 / s), -448, 448))        s: the checkpoint's scalar scale, [1] fp32
    x [T, H] bf16 -> q [T, H] fp8 (the spec's "q" output, written directly)

Elementwise, memory-bound (2 B in, 1 B out per element).  The scale is read by the kernel every call (it is data)
and its reciprocal taken once per program in fp32, as the upstream does.  Tiles: [rows, columns] of ~8K
elements, columns first (contiguous, 16-byte vectors, a width dividing H), then rows (see `static_config`).
The timed call is that one launch.
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
def static_quant_fp8_kernel(
    x: torch.Tensor,  # [T, H] bf16
    scale: torch.Tensor,  # [1] fp32
    q: torch.Tensor,  # [T, H] float8_e4m3fn, written
) -> None:
    T, H = x.size(0), x.size(1)
    for tile_t, tile_h in hl.tile([T, H]):
        inv = 1.0 / hl.load(scale, [0])
        xb = x[tile_t, tile_h].to(torch.float32)
        q[tile_t, tile_h] = torch.clamp(xb * inv, -448.0, 448.0).to(q.dtype)


def static_config(t: int, h: int, target: int = 8192, max_cols: int = 4096) -> dict[str, Any]:
    """[bt, bh] tiles of ~`target` elements: bh the largest power of two dividing H (no masked lanes: 7168 ->
    1024), up to `max_cols`, or H's power-of-two ceiling when that is under 128; the rest in rows; rows, then
    columns (down to 1024), shrink while under ~4 programs per SM (decode)."""
    bh = min(h & -h, max_cols) if h > 0 else 16
    if bh < 128:
        bh = pow2_at_most(max_cols, h, floor=16)
    bt = pow2_at_most(max(1, target // bh), t)
    while -(-t // bt) * -(-h // bh) < 4 * sm_count() and (bt > 1 or bh > 1024):
        if bt > 1:
            bt //= 2
        else:
            bh //= 2
    elems = bt * bh
    return {"block_sizes": [bt, bh], "num_warps": min(8, max(1, elems // 256)),
            "num_stages": 1}


class HelionStaticQuantFp8(HelionPort):
    kernel: ClassVar[str] = "static_quant_fp8"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one elementwise pass, [rows, cols] tiles of ~8K elements, scale read on device every call, writing the "
        "spec's q buffer",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"static_quant_fp8_kernel": static_config(int(dims["T"]), int(dims["H"]))}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x, scale = inputs["x"], inputs["scale"]
        return [Launch(static_quant_fp8_kernel, (x, scale, out["q"]), adjust=rows_block(x.shape[0]))]


IMPL = HelionStaticQuantFp8()

if __name__ == "__main__":
    check_main(IMPL)
