"""The causal_conv1d and causal_conv1d_update ports' generated Triton code in Triton's CPU interpreter, with real
tiles: the measured default configs (32-token x 128-channel tiles with a separate state loop; one request row and
256 channels per program) and small ones, over partial token, channel and sequence/request tiles, ragged sequences
(one shorter than the window, token tiles straddling sequence starts), and widths 2, 3 and 4.

Helion's interpret mode (HELION_INTERPRET=1) runs kernel bodies in eager PyTorch and ignores tile sizes, so it never
sees this code; here it runs without HELION_INTERPRET and with TRITON_INTERPRET=1, in its own process.  The ports
are bf16-only but their kernels are dtype-generic and the interpreter mishandles bf16 casts: fp16 inputs, against
the spec's fp32 reference and tolerances (the conv state exact).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent


def _interpret_main() -> None:
    import torch

    from harness.correctness import check_call
    from harness.spec import Case
    from ports.linear import causal_conv1d, causal_conv1d_update

    def half(d: dict) -> dict:
        return {k: v.half() if isinstance(v, torch.Tensor) and v.dtype == torch.bfloat16 else v for k, v in d.items()}

    def cfg(bs: list[int], nw: int) -> dict:
        return {"block_sizes": bs, "num_warps": nw, "num_stages": 1}

    fwd = causal_conv1d.IMPL
    fwd_runs = [  # (sequence lengths, dim, W, config)
        ([37, 37, 37], 600, 4, fwd.default_configs({"batch": 1, "T": 2048, "dim": 5376, "W": 4}, "bf16")),
        ([1, 40, 2, 70], 200, 4, {"conv1d_fwd_kernel": cfg([32, 128, 1, 256], 8)}),
        ([1, 40, 2, 70], 200, 4, {"conv1d_fwd_kernel": cfg([8, 64, 2, 64], 2)}),  # partial sequence tile
        ([5, 2, 9], 48, 3, {"conv1d_fwd_kernel": cfg([4, 32, 1, 32], 1)}),
    ]
    for lens, dim, width, cfgs in fwd_runs:
        case = Case("interp", "test", {"batch": len(lens), "T": max(lens), "dim": dim, "W": width})
        inputs = half(fwd.spec.make_inputs(Case("interp", "test", {"batch": 1, "T": sum(lens), "dim": dim,
                                                                   "W": width}), "bf16", torch.device("cpu"), 3))
        bounds = torch.tensor([0, *lens]).cumsum(0).to(torch.int32)
        inputs["query_start_loc"] = bounds
        out = half(fwd.spec.make_output(inputs, case, "bf16"))
        out = {k: v.fill_(float("nan")) for k, v in out.items()}
        plan = fwd.build(inputs, out, case, "bf16", cfgs)
        res = check_call(plan, out, fwd.spec.reference(inputs, case, "bf16"), fwd.spec.tolerance("bf16"))
        assert res.ok, (lens, dim, width, cfgs, res.reason)
        print(f"ok causal_conv1d lens={lens} dim={dim} W={width} rel={res.rel_err:.1e} {cfgs}", flush=True)

    upd = causal_conv1d_update.IMPL
    upd_runs = [  # (batch, dim, W, config)
        (5, 600, 4, upd.default_configs({"batch": 512, "dim": 5376, "W": 4}, "bf16")),
        (5, 600, 4, {"conv1d_update_kernel": cfg([4, 128], 4)}),  # partial request tile, rows per thread
        (3, 100, 3, {"conv1d_update_kernel": cfg([1, 64], 2)}),
        (3, 100, 2, {"conv1d_update_kernel": cfg([2, 32], 1)}),
    ]
    for batch, dim, width, cfgs in upd_runs:
        case = Case("interp", "test", {"batch": batch, "dim": dim, "W": width})
        inputs = half(upd.spec.make_inputs(case, "bf16", torch.device("cpu"), 3))
        out = {k: v.fill_(float("nan")) for k, v in half(upd.spec.make_output(inputs, case, "bf16")).items()}
        plan = upd.build(inputs, out, case, "bf16", cfgs)
        res = check_call(plan, out, upd.spec.reference(inputs, case, "bf16"), upd.spec.tolerance("bf16"))
        assert res.ok, (batch, dim, width, cfgs, res.reason)
        print(f"ok causal_conv1d_update batch={batch} dim={dim} W={width} rel={res.rel_err:.1e} {cfgs}", flush=True)


@pytest.mark.slow
def test_generated_triton_partial_tiles_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
