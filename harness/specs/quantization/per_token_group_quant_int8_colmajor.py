"""Per-token-group INT8 activation quantization with column-major scales (catalog row 70, SGLang
`_per_token_group_quant_8bit_colmajor` via `_per_token_group_quant_8bit_raw(..., dtype=torch.int8,
column_major_scales=True, scale_tma_aligned=True)`, kernels/ops/quantization/fp8_kernel.py; the DeepGEMM-style
scale layout).

The math is exactly `per_token_group_quant_int8` (rows 62 / 64): per token t and group g of G columns,

    s[t, g] = max(max_i |x[t, gG + i]|, 1e-10) / 127
    q[t, gG + i] = int8(clamp(x[t, gG + i] / s[t, g], -128, 127))     (Triton's float->int cast: toward zero)

Outputs (the kernel's own results, written by the timed call; no dequant epilogue):
    "q"  [T, H] int8, contiguous
    "s"  [T, H / G] fp32 seen through SGLang's column-major TMA-aligned layout, the buffer
         `create_per_token_group_quant_fp8_output_scale(column_major_scales=True, scale_tma_aligned=True)`
         allocates: storage [H / G, T4] with T4 = ceil(T / 4) * 4 (each group's column of scales padded to a
         multiple of 4 floats = 16 bytes, TMA's alignment), viewed transposed and cut to T rows, i.e. shape
         [T, H / G] with strides (1, T4).  s[t, g] sits at storage offset g * T4 + t; the padding (T4 - T floats per
         group) is never written nor checked.  The kernel receives stride(1) = T4 as `y_s_col_stride`.

It is its own spec, not a second `sglang` provider of per_token_group_quant_int8, because that spec's `sglang`
row is already row 64 (int8_kernel.per_token_group_quant_int8) and a provider name is one impl per spec.
Reference and tolerances are the int8 spec's (the reference s is contiguous: the checker compares values, not
strides).
"""

from __future__ import annotations

import torch

from harness.specs.quantization.per_token_group_quant_int8 import PerTokenGroupQuantInt8Spec


def colmajor_tma_scales(t: int, ng: int, device: torch.device) -> torch.Tensor:
    """[t, ng] fp32 view of [ng, ceil4(t)] storage: SGLang's column-major, TMA-aligned scale layout."""
    return torch.empty(ng, (t + 3) // 4 * 4, dtype=torch.float32, device=device).transpose(0, 1)[:t, :]


class PerTokenGroupQuantInt8ColMajorSpec(PerTokenGroupQuantInt8Spec):
    id = "per_token_group_quant_int8_colmajor"
    catalog_rows = (70,)
    token_dim = 'T'
    title = "Per-token-group INT8 activation quantization, group 128, column-major scales (truncating cast)"

    def scale_buffer(self, t: int, ng: int, device: torch.device) -> torch.Tensor:
        return colmajor_tma_scales(t, ng, device)


SPEC = PerTokenGroupQuantInt8ColMajorSpec()
