"""The add_rms_norm port's generated Triton code in Triton's CPU interpreter, with real tiles: partial row tiles,
H not a power of two, a single row; fp16 x / weight / y (the interpreter mishandles bf16 casts), fp32 residual.
The generated tests (test_ports_generated.py) cover the contract in Helion's eager mode and the sm_90 compile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent


def _interpret_main() -> None:
    import helion
    import torch
    import triton.language as tl
    from triton.language.extra import libdevice

    from ports.normalization.add_rms_norm import add_rms_norm_kernel

    libdevice.rsqrt = lambda v: tl.math.rsqrt(v)  # libdevice stubs have no interpreter implementation; tl.math's do
    g = torch.Generator().manual_seed(0)
    for t, h, br in ((7, 100, 4), (5, 3000, 2), (1, 33, 1), (9, 64, 8)):
        x = torch.randn(t, h, generator=g).half()
        r = 3 * torch.randn(t, h, generator=g)
        w = (1 + 0.2 * torch.randn(h, generator=g)).half()
        y = torch.full((t, h), float("nan"), dtype=torch.float16)
        r_out = torch.full((t, h), float("nan"))
        args = (x, r, w, y, r_out, 1e-5)
        add_rms_norm_kernel.bind(args).compile_config(helion.Config(block_sizes=[br], num_warps=4))(*args)
        s = x.float() + r
        ref = s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + 1e-5) * w.float()
        rel = float((y.float() - ref).norm() / ref.norm())
        assert torch.equal(r_out, s), (t, h, br)
        assert rel < 2e-3, (t, h, br, rel)
        print(f"ok T={t} H={h} block={br} rel={rel:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
