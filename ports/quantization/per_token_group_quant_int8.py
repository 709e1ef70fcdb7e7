"""Helion port of per-token-group INT8 quantization (catalog rows 62 vLLM `_per_token_group_quant_int8`, 64 SGLang
`_per_token_group_quant_int8`; row-major scales).

    s[t, g] = max(amax_i |x[t, gG+i]|, 1e-10) / 127;  q = int8(clamp(x / s, -128, 127))   (cast truncates)
    x [T, H] bf16 -> q [T, H] int8, s [T, H/G] fp32 row-major (the spec's "q" / "s" outputs, written directly)

One pass over x, memory-bound (2 B in, 1 B + 4/G B out per element): the kernel lives in _group.py; each program
quantizes a [tokens, groups] tile of ~8K elements (many groups per program), fp32 amax.  The timed call is that
one launch.
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.quantization._group import GroupQuantPort, group_quant_int8_kernel


class HelionPerTokenGroupQuantInt8(GroupQuantPort):
    kernel: ClassVar[str] = "per_token_group_quant_int8"
    quant_kernel = group_quant_int8_kernel
    notes: ClassVar[tuple[str, ...]] = (
        "one pass: [tokens, groups] tiles of ~8K elements, fp32 group amax, truncating int8 cast, row-major scales, "
        "writing the spec's q / s buffers",
    )


IMPL = HelionPerTokenGroupQuantInt8()

if __name__ == "__main__":
    check_main(IMPL)
