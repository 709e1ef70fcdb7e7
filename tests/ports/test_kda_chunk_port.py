"""The kda_chunk port's generated Triton code in Triton's CPU interpreter, with real tiles: ragged sequences with
partial chunks (16 and 32 tokens), a partial V block, GQA-style head groups; fp16 inputs (the interpreter
mishandles bf16 casts); both named outputs (o and the per-sequence final_state) checked.  Also the fused_recurrent
port on a partial V block (same walk, one token at a time)."""

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
    from ports.attention import kda_chunk, kda_fused_recurrent

    # libdevice stubs have no interpreter implementation; tl.math's do (looked up at call time, when patched)
    libdevice.exp = lambda v: tl.math.exp(v)
    libdevice.rsqrt = lambda v: tl.math.rsqrt(v)
    patch_loop_bounds()
    runs = [  # (port, case, config overrides)
        (kda_chunk, {"B": 3, "S": 40, "H": 2, "HV": 4, "K": 32, "V": 40, "ragged": 1},
         {"kda_chunk_kernel": {"chunk": 16, "block_sizes": [16]}}),
        (kda_chunk, {"B": 2, "S": 70, "H": 1, "HV": 1, "K": 64, "V": 32, "ragged": 1},
         {"kda_chunk_kernel": {"chunk": 32, "block_sizes": [32]}}),
        (kda_fused_recurrent, {"B": 3, "T": 3, "H": 2, "HV": 4, "K": 24, "V": 40},
         {"kda_recurrent_kernel": {"block_sizes": [16]}}),
    ]
    for port, params, over in runs:
        spec = port.IMPL.spec
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "fp16", torch.device("cpu"), seed=5)
        out = spec.make_output(inputs, case, "fp16")
        cfgs = port.IMPL.default_configs(params, "fp16")
        for name, entry in over.items():
            cfgs[name] = {**cfgs[name], **entry}
        plan = port.IMPL.build(inputs, out, case, "fp16", cfgs)
        res = check_call(plan, out, spec.reference(inputs, case, "fp16"), spec.tolerance("fp16"))
        assert res.ok, (params, res.reason)
        print(f"ok {spec.id} {case.label()} rel={res.rel_err:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
