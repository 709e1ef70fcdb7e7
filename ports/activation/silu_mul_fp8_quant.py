"""Helion port of SiLU-and-mul + per-token-group FP8 quantization, column-major scales (catalog row 75; vLLM
0.33.0 `silu_mul_per_token_group_quant_fp8_colmajor`, the DeepGEMM fused-MoE activation step).

    y[r, j] = bf16(bf16(silu(x[r, j])) * x[r, N + j]);   s[r, g] = max(amax_{j in g} |y[r, j]|, 1e-10) * (1/448)
    q[r, j] = fp8_e4m3(clamp(y[r, j] / s[r, g]))      x [R, 2N] bf16 -> q [R, N] fp8, s [R, N / G] fp32 (stride (1, R))

One pass: gate and up are read once (two strided views of x, no copy), the activated product stays in registers
for the group max and the quantization, and only q (1 byte per element) and s leave the kernel; the two bf16
roundings of the upstream (activated gate, product) are kept so the scales match it bit for bit; q is y * (1/s)
(one reciprocal per row and group instead of a divide per element: the kernel is ALU-heavy for its bytes), at most
one fp32 ulp from y / s, which moves a value only when it sits on an fp8 rounding tie.  Tiles are [rows, G]: one
program owns whole quantization groups of `block_r` rows, so the group max is a register reduction and the scale
store is a contiguous run of the column-major s.  The kernel writes the spec's "q" and "s" buffers directly (s in
the spec's column-major layout): the timed call is the one launch.
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
def silu_mul_fp8_quant_kernel(
    gate: torch.Tensor,  # [R, N] bf16 view of x[:, :N]
    up: torch.Tensor,  # [R, N] bf16 view of x[:, N:]
    q: torch.Tensor,  # [R, N] float8_e4m3fn, written
    s: torch.Tensor,  # [R, N / G] fp32, column-major (stride (1, R)), written
    group: hl.constexpr,  # G: the column block is exactly one quantization group
) -> None:
    R = q.size(0)
    N = hl.specialize(q.size(1))
    for tile_r, tile_n in hl.tile([R, N], block_size=[None, group]):
        g = gate[tile_r, tile_n].to(torch.float32)
        u = up[tile_r, tile_n].to(torch.float32)
        act = (g / (1.0 + torch.exp(-g))).to(gate.dtype).to(torch.float32)
        y = (act * u).to(gate.dtype).to(torch.float32)
        amax = torch.amax(torch.abs(y), dim=1)  # [block_r]: the group max of each row
        scale = torch.clamp(amax, min=1e-10) * (1.0 / 448.0)
        inv = 1.0 / scale  # one reciprocal per row and group, a multiply per element (the kernel is ALU-heavy)
        q[tile_r, tile_n] = torch.clamp(y * inv[:, None], -448.0, 448.0).to(q.dtype)
        hl.store(s, [tile_r, tile_n.id], scale)


def default_configs(dims: Mapping[str, Any], dtype: str) -> Configs:
    """[block_r, G] tiles: up to 16 rows x 128 columns (2K elements, 8 KB of bf16 read per program, 16-byte
    loads at 4 warps; measured on the H200 at R = 131072, N = 256: 16 x 128 / 4 warps 59 us, 32 x 128 64 us),
    fewer rows while the grid would not fill two waves of the SMs (decode: R = 128)."""
    r, n, g = int(dims["R"]), int(dims["N"]), int(dims["G"])
    groups = max(1, n // g)
    br = pow2_at_most(max(1, 2048 // g), r)
    while br > 4 and -(-r // br) * groups < 2 * sm_count():
        br //= 2
    return {"silu_mul_fp8_quant_kernel": {"block_sizes": [br], "num_warps": 4, "num_stages": 1}}


class HelionSiluMulFp8Quant(HelionPort):
    kernel: ClassVar[str] = "silu_mul_fp8_quant"
    dtypes: ClassVar[tuple[str, ...] | None] = ("bf16",)
    notes: ClassVar[tuple[str, ...]] = (
        "one pass: silu(gate)*up (bf16 roundings as upstream), group amax, fp8 q and column-major scales, "
        "writing the spec's q / s buffers",
    )

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return default_configs(dims, dtype)

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        x, q, s = inputs["x"], out["q"], out["s"]
        r, n, g = x.shape[0], x.shape[1] // 2, int(case.params["G"])
        if x.shape[1] != 2 * n or n % g or tuple(q.shape) != (r, n) or tuple(s.shape) != (r, n // g):
            raise ValueError(f"x must be [R, 2N] with G | N, q [R, N] and s [R, N / G], got {tuple(x.shape)}, "
                             f"{tuple(q.shape)}, {tuple(s.shape)}, G={g}")
        return [Launch(silu_mul_fp8_quant_kernel, (x[:, :n], x[:, n:], q, s, g), adjust=rows_block(r))]


IMPL = HelionSiluMulFp8Quant()

if __name__ == "__main__":
    check_main(IMPL)
