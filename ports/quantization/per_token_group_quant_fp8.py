"""Helion port of per-token-group FP8 quantization (catalog rows 65 vLLM `_per_token_group_quant_fp8`, 67 SGLang
`_per_token_group_quant_8bit`; same launcher contract, row-major scales).

    s[t, g] = max(amax_i |x[t, gG+i]|, 1e-10) * (1/448);  q = fp8_e4m3(clamp(x / s, -448, 448))
    x [T, H] bf16 -> q [T, H] fp8, s [T, H/G] fp32 row-major (the spec's "q" / "s" outputs, written directly)

One pass over x, memory-bound (2 B in, 1 B + 4/G B out per element): the kernel lives in _group.py; each program
quantizes a [tokens, groups] tile of ~8K elements (many 128-element groups per program instead of upstream's one
group per program), fp32 amax, vLLM's scale formula.  The timed call is that one launch.
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.quantization._group import GroupQuantPort, group_quant_fp8_kernel


class HelionPerTokenGroupQuantFp8(GroupQuantPort):
    kernel: ClassVar[str] = "per_token_group_quant_fp8"
    quant_kernel = group_quant_fp8_kernel
    notes: ClassVar[tuple[str, ...]] = (
        "one pass: [tokens, groups] tiles of ~8K elements, fp32 group amax, row-major scales, writing the spec's "
        "q / s buffers",
    )


IMPL = HelionPerTokenGroupQuantFp8()

if __name__ == "__main__":
    check_main(IMPL)
