"""The rms_norm_gated port's generated Triton code in Triton's CPU interpreter, with real tiles: partial row and
group tiles, several groups per row, one group per row, a single row; fp16 tensors (the interpreter mishandles
bf16 casts).  The generated tests (test_ports_generated.py) cover the contract in Helion's eager mode and the
sm_90 compile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent


def _interpret_main() -> None:
    import helion
    import torch
    import torch.nn.functional as F
    import triton.language as tl
    from triton.language.extra import libdevice

    from ports.normalization.rms_norm_gated import rms_norm_gated_kernel

    libdevice.rsqrt = lambda v: tl.math.rsqrt(v)  # libdevice stubs have no interpreter implementation; tl.math's do
    g = torch.Generator().manual_seed(0)
    for t, ng, gs, bt, bg in ((7, 3, 48, 4, 2), (3, 1, 100, 2, 1), (5, 4, 16, 2, 4), (1, 2, 40, 1, 2)):
        d = ng * gs
        x = torch.randn(t, d, generator=g).half()
        z = (2 * torch.randn(t, d, generator=g)).half()
        w = (1 + 0.2 * torch.randn(d, generator=g)).half()
        o = torch.full((t, d), float("nan"), dtype=torch.float16)
        args = (x.view(t, ng, gs), z.view(t, ng, gs), w.view(ng, gs), o.view(t, ng, gs), 1e-5)
        cfg = helion.Config(block_sizes=[bt, bg], num_warps=4)
        rms_norm_gated_kernel.bind(args).compile_config(cfg)(*args)
        u = (x.float() * F.silu(z.float())).view(t, ng, gs)
        ref = (u * torch.rsqrt(u.pow(2).mean(-1, keepdim=True) + 1e-5)).view(t, d) * w.float()
        rel = float((o.float() - ref).norm() / ref.norm())
        assert not o.isnan().any() and rel < 2e-3, (t, ng, gs, bt, bg, rel)
        print(f"ok T={t} NG={ng} G={gs} blocks=[{bt}, {bg}] rel={rel:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
