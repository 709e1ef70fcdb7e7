"""Helion port of per-token-group INT8 quantization with column-major scales (catalog row 70, SGLang
`_per_token_group_quant_8bit_colmajor` via `_per_token_group_quant_8bit_raw(dtype=int8, column_major_scales=True,
scale_tma_aligned=True)`).

    s[t, g] = max(amax_i |x[t, gG+i]|, 1e-10) / 127;  q = int8(clamp(x / s, -128, 127))   (cast truncates)
    x [T, H] bf16 -> q [T, H] int8, s [T, H/G] fp32 stored [H/G, ceil4(T)] (DeepGEMM layout; the spec's "s" buffer)

Same kernel as per_token_group_quant_int8 (_group.py): only the scale tensor's strides differ (the spec's s is a
transposed view of the TMA-aligned [H/G, ceil4(T)] storage), so a [tokens, groups] tile stores its scales
token-contiguous.  One pass, memory-bound; the timed call is that one launch, writing the spec's q / s directly.
"""

from __future__ import annotations

from typing import ClassVar

from ports._port import check_main
from ports.quantization._group import GroupQuantPort, group_quant_int8_kernel


class HelionPerTokenGroupQuantInt8ColMajor(GroupQuantPort):
    kernel: ClassVar[str] = "per_token_group_quant_int8_colmajor"
    quant_kernel = group_quant_int8_kernel
    notes: ClassVar[tuple[str, ...]] = (
        "one pass: [tokens, groups] tiles of ~8K elements, fp32 group amax, truncating int8 cast, "
        "column-major TMA-aligned scales ([H/G, ceil4(T)] storage), writing the spec's q / s buffers",
    )


IMPL = HelionPerTokenGroupQuantInt8ColMajor()

if __name__ == "__main__":
    check_main(IMPL)
