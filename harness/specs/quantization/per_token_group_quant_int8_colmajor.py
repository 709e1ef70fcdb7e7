"""Per-token-group INT8 activation quantization with column-major scales (catalog row 70, SGLang
`_per_token_group_quant_8bit_colmajor` via `_per_token_group_quant_8bit_raw(..., dtype=torch.int8,
column_major_scales=True)`, kernels/ops/quantization/fp8_kernel.py; the DeepGEMM-style scale layout).

The math is exactly `per_token_group_quant_int8` (rows 62 / 64): per token t and group g of G columns,

    s[t, g] = max(max_i |x[t, gG + i]|, 1e-10) / 127
    q[t, gG + i] = int8(clamp(x[t, gG + i] / s[t, g], -128, 127))     (Triton's float->int cast: toward zero)

Only the scale layout differs: s is stored column-major ([H / G, T] in memory, TMA-aligned rows as SGLang's
DeepGEMM callers allocate it).  It is its own spec, not a second `sglang` provider of per_token_group_quant_int8,
because that spec's `sglang` row is already row 64 (int8_kernel.per_token_group_quant_int8) and a provider name
is one impl per spec.  Output contract, reference and tolerance are the int8 spec's: out [T, H] fp32 =
float(q) * s per group (the layout-blind torch epilogue `dequantize_groups_into`).
"""

from __future__ import annotations

from harness.specs.quantization.per_token_group_quant_int8 import PerTokenGroupQuantInt8Spec


class PerTokenGroupQuantInt8ColMajorSpec(PerTokenGroupQuantInt8Spec):
    id = "per_token_group_quant_int8_colmajor"
    catalog_rows = (70,)
    token_dim = 'T'
    title = "Per-token-group INT8 activation quantization, group 128, column-major scales (truncating cast)"


SPEC = PerTokenGroupQuantInt8ColMajorSpec()
