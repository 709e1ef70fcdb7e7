"""The mamba2_ssd port's generated Triton code in Triton's CPU interpreter, with real tiles: three or more chunks per
sequence (the parallel chunk states, the serial state passing over them, the chunk scan reading them), a partial
last chunk, two sequences, two groups, and the configs the defaults pick at the mamba2-2.7b prefill shape.

Helion's interpret mode (HELION_INTERPRET=1) runs kernel bodies in eager PyTorch and ignores tile sizes, so it never
sees this code; here it runs without HELION_INTERPRET and with TRITON_INTERPRET=1, in its own process.  The port is
bf16-only, but its kernels are dtype-generic and the interpreter mishandles bf16 casts: the spec's bf16 inputs are
run as fp16, against the spec's fp32 reference and bf16 tolerance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import patch_loop_bounds, run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent


def _interpret_main() -> None:
    import torch
    import triton.language as tl
    from triton.language.extra import libdevice

    from harness.correctness import check_call
    from harness.spec import Case
    from ports.linear import mamba2_ssd

    # libdevice stubs have no interpreter implementation; tl.math's do (log1p: softplus's, fine at these dt values)
    libdevice.exp = lambda v: tl.math.exp(v)
    libdevice.log1p = lambda v: tl.math.log(1.0 + v)
    patch_loop_bounds()
    impl, spec = mamba2_ssd.IMPL, mamba2_ssd.IMPL.spec
    big = impl.default_configs({"batch": 1, "T": 2048, "H": 80, "P": 64, "G": 1, "N": 128, "chunk": 256}, "bf16")
    assert big["ssd_state_kernel"]["block_sizes"] == [64, 128, 64], big
    runs = [  # (case params, configs: None = the case's defaults)
        # 3 chunks of 64 (the last 22 tokens), 2 sequences, 2 groups of 2 heads; small grids shrink the tiles
        ({"batch": 2, "T": 150, "H": 4, "P": 64, "G": 2, "N": 128, "chunk": 64}, None),
        # the mamba2-2.7b configs (chunk 256) on 3 chunks, the last one 88 tokens
        ({"batch": 1, "T": 600, "H": 2, "P": 64, "G": 1, "N": 128, "chunk": 256}, big),
        # odd head/state dims (masked P and N lanes), 4 chunks of 16, the last one 2 tokens; fp32 start states in
        # place (start_bf16 off) and the scan pipelined
        ({"batch": 2, "T": 50, "H": 4, "P": 24, "G": 2, "N": 40, "chunk": 16},
         {"ssd_state_passing_kernel": {"start_bf16": 0}, "ssd_scan_kernel": {"num_stages": 2}}),
        # the probe's options: C B^T once per (chunk, group) in its own launch, start states stored in bf16
        ({"batch": 1, "T": 600, "H": 2, "P": 64, "G": 1, "N": 128, "chunk": 256},
         {**big, "ssd_state_passing_kernel": {**big["ssd_state_passing_kernel"], "start_bf16": 1},
          "ssd_cb_kernel": {"chunk": 256, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 1}}),
        ({"batch": 2, "T": 50, "H": 4, "P": 24, "G": 2, "N": 40, "chunk": 16},
         {"ssd_cb_kernel": {"chunk": 16, "block_sizes": [16, 16], "num_warps": 4, "num_stages": 1},
          "ssd_state_passing_kernel": {"start_bf16": 1}}),
    ]
    for params, cfgs in runs:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "bf16", torch.device("cpu"), seed=3)
        inputs = {k: v.half() if isinstance(v, torch.Tensor) and v.dtype == torch.bfloat16 else v
                  for k, v in inputs.items()}
        # A scaled down so states carry across chunks: at the spec's A most heads forget a chunk within it, and a
        # wrong state passing would hide under the tolerance
        inputs["A"] = 0.02 * inputs["A"]
        out = spec.make_output(inputs, case, "bf16").half()
        defaults = impl.default_configs(params, "bf16")
        cfgs = {**defaults, **{k: {**defaults.get(k, {}), **v} for k, v in (cfgs or {}).items()}}
        plan = impl.build(inputs, out, case, "bf16", cfgs)
        assert len(plan.launches) == (5 if "ssd_cb_kernel" in cfgs else 4), plan.launches
        res = check_call(plan, out, spec.reference(inputs, case, "bf16"), spec.tolerance("bf16"))
        assert res.ok, (params, cfgs, res.reason)
        print(f"ok {case.label()} rel={res.rel_err:.1e} {cfgs}", flush=True)


@pytest.mark.slow
def test_generated_triton_three_chunks_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
