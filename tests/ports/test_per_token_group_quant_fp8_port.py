"""The generated Triton code of the activation-quantization ports (per_token_group_quant_fp8 / _int8 /
_int8_colmajor through their shared kernels in ports/quantization/_group.py, plus per_token_quant_int8,
static_quant_fp8, mx_block_rearrange and awq_dequantize, checked together to pay the interpreter start-up once)
run with real, partial tiles in Triton's CPU interpreter (TRITON_INTERPRET=1, own process): Helion's eager
interpret mode ignores tile sizes, so masking and index arithmetic are only exercised here.  fp32 / int8 / uint8
/ fp16 tensors only (the interpreter mishandles bf16 and fp8 casts): the fp8 kernels store into fp32 q (clamp
only), the rest is exact.  The kernels write the specs' own outputs (q, s; the column-major s in the colmajor
spec's buffer layout), so they are called here on buffers laid out as the specs allocate them."""

from __future__ import annotations

import pytest

from tests.ports.triton_interp import run_in_triton_interpreter

SCRIPT = r'''
import torch, helion
from harness.specs.quantization._common import awq_dequant_ref, awq_weight_inputs
from harness.specs.quantization.mx_block_rearrange import swizzle_reference
from harness.specs.quantization.per_token_group_quant_int8_colmajor import colmajor_tma_scales
from ports.quantization import _group as G
from ports.quantization.awq_dequantize import awq_dequant_kernel
from ports.quantization.mx_block_rearrange import mx_swizzle_kernel
from ports.quantization.per_token_quant_int8 import token_quant_int8_kernel
from ports.quantization.static_quant_fp8 import static_quant_fp8_kernel


def run(k, args, **cfg):
    k.bind(args).compile_config(helion.Config(num_warps=4, **cfg))(*args)


torch.manual_seed(0)
for t, ng, g, bs in ((13, 7, 128, [4, 4]), (5, 3, 32, [2, 2]), (1, 3, 32, [1, 4])):
    x = torch.randn(t, ng, g) * torch.exp(torch.randn(t, 1, 1))
    amax = x.abs().amax(-1).clamp_min(1e-10)
    for colmajor in (False, True):
        nan = float("nan")
        s = colmajor_tma_scales(t, ng, x.device).fill_(nan) if colmajor else torch.full((t, ng), nan)
        q = torch.full((t, ng, g), 99, dtype=torch.int8)
        run(G.group_quant_int8_kernel, (x, q, s), block_sizes=bs)
        assert torch.equal(s, amax / 127), ("int8 s", t, ng, bs, colmajor)
        qr = torch.trunc((x / (amax / 127)[..., None]).clamp(-128, 127))
        assert (q.float() - qr).abs().max() <= 1 and (q.float() != qr).float().mean() < 1e-3, ("int8 q", t, ng)
        qf = torch.full((t, ng, g), nan)
        run(G.group_quant_fp8_kernel, (x, qf, s), block_sizes=bs)
        sr = amax * (1 / 448)
        assert torch.allclose(s, sr, rtol=1e-6, atol=0), ("fp8 s", t, ng, bs, colmajor)
        assert torch.allclose(qf, (x / sr[..., None]).clamp(-448, 448), rtol=1e-5), ("fp8 q", t, ng, bs, colmajor)
for t, h, bs in ((13, 300, [4]), (1, 97, [1])):
    x = torch.randn(t, h) * 3
    q = torch.full((t, h), 99, dtype=torch.int8)
    s = torch.full((t,), float("nan"))
    run(token_quant_int8_kernel, (x, q, s), block_sizes=bs, reduction_loops=[None])
    amax = x.abs().amax(1).clamp_min(1e-10)
    v = x * (127 / amax)[:, None]
    qr = torch.sign(v) * torch.floor(v.abs() + 0.5)
    assert torch.allclose(s, amax / 127) and (q.float() - qr).abs().max() <= 1, ("token int8", t, h)
x, sc = torch.randn(13, 300) * 3, torch.tensor([0.01])
q = torch.full((13, 300), float("nan"))
run(static_quant_fp8_kernel, (x, sc, q), block_sizes=[4, 128])
assert torch.allclose(q, (x * (1 / sc)).clamp(-448, 448), rtol=1e-6), "static fp8"
for r, c, bs in ((300, 130, [2, 1024]), (7, 13, [1, 512]), (129, 3, [4, 512])):
    s = torch.randint(110, 141, (r, c), dtype=torch.uint8)
    pr, pc = -(-r // 128) * 128, -(-c // 4) * 4
    out = torch.full((pr, pc), 7, dtype=torch.uint8)
    run(mx_swizzle_kernel, (s.view(-1), out.view(pr // 128, pc * 128), r, c), block_sizes=bs)
    assert torch.equal(out, swizzle_reference(s)), ("mx", r, c, bs)
gen = torch.Generator().manual_seed(0)
for k, n, grp, bs in ((96, 40, 32, [16, 4]), (512, 264, 128, [8, 16])):
    inp = awq_weight_inputs(k, n, grp, torch.device("cpu"), gen)
    out = torch.full((k, n), float("nan"), dtype=torch.float16)
    run(awq_dequant_kernel, (inp["qweight"], inp["qzeros"], inp["scales"].view(k // grp, n // 8, 8),
                             out.view(k, n // 8, 8), grp), block_sizes=bs)
    ref = awq_dequant_ref(inp["qweight"], inp["qzeros"], inp["scales"])
    assert torch.allclose(out.float(), ref, rtol=1e-3, atol=1e-6), ("awq", k, n, bs)
print("all ok")
'''


@pytest.mark.slow
def test_quant_kernels_in_triton_interpreter() -> None:
    stdout = run_in_triton_interpreter("-c", SCRIPT)
    assert "all ok" in stdout, stdout[-3000:]
