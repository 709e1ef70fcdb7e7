"""The chunk_o and gated_delta_rule_chunk ports' generated Triton code in Triton's CPU interpreter, with real tiles,
at packed batches of N = 2 equal-length sequences whose length is not a multiple of the 64-token chunk (a partial
last chunk per sequence, clamped column indices, `tile_t.id` indexing of the chunk states) and a partial V block.

Helion's interpret mode (HELION_INTERPRET=1) runs kernel bodies in eager PyTorch and ignores tile sizes, so it never
sees this code; here it runs without HELION_INTERPRET and with TRITON_INTERPRET=1, in its own process.  The ports
are bf16-only, but their kernels are dtype-generic and the interpreter mishandles bf16 casts: the spec's bf16 inputs
are run as fp16 (exactly representable ranges here), against the spec's fp32 reference and bf16 tolerance.
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
    from ports.linear import chunk_o, gated_delta_rule_chunk

    # libdevice stubs have no interpreter implementation; tl.math's do (looked up at call time, when patched)
    libdevice.exp = lambda v: tl.math.exp(v)
    patch_loop_bounds()
    runs = [  # (port, case params, config overrides)
        (chunk_o, {"T": 70, "N": 2, "H": 1, "HV": 2, "K": 16, "V": 48}, {}),
        # GVA group 2, three chunks per sequence (the last one 22 tokens), V blocks of 16 and 32
        (chunk_o, {"T": 150, "N": 2, "H": 2, "HV": 4, "K": 32, "V": 32}, {}),
        (chunk_o, {"T": 150, "N": 2, "H": 2, "HV": 4, "K": 32, "V": 32},
         {"chunk_o_kernel": {"block_sizes": [32], "num_warps": 4, "num_stages": 2}}),
        (gated_delta_rule_chunk, {"T": 70, "N": 2, "H": 1, "HV": 2, "K": 16, "V": 32}, {}),
    ]
    for port, params, over in runs:
        spec = port.IMPL.spec
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "bf16", torch.device("cpu"), seed=3)
        inputs = {k: v.half() if isinstance(v, torch.Tensor) and v.dtype == torch.bfloat16 else v
                  for k, v in inputs.items()}
        out = spec.make_output(inputs, case, "bf16")
        if isinstance(out, dict):
            out = {k: v.half() if v.dtype == torch.bfloat16 else v for k, v in out.items()}
        else:
            out = out.half()
        cfgs = port.IMPL.default_configs(params, "bf16") | over
        plan = port.IMPL.build(inputs, out, case, "bf16", cfgs)
        res = check_call(plan, out, spec.reference(inputs, case, "bf16"), spec.tolerance("bf16"))
        assert res.ok, (spec.id, params, cfgs, res.reason)
        print(f"ok {spec.id} {case.label()} rel={res.rel_err:.1e} {cfgs}", flush=True)


@pytest.mark.slow
def test_generated_triton_partial_chunks_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
