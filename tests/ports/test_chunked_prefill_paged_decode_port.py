"""The chunked_prefill_paged_decode port's generated Triton code in Triton's CPU interpreter, with real tiles:
mixed batches (decodes + ragged chunks, an empty-context chunk, GQA groups 1, 3 and 4), partial row blocks and
page blocks of 1, 2 and 4 pages; fp16 (the interpreter mishandles bf16 casts).  The spec's D=24 test case is
outside the port (D / x must be a power of two, see case_reason); its shape is covered here at D=32."""

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
    from ports.attention import chunked_prefill_paged_decode as port

    # libdevice stubs have no interpreter implementation; tl.math's do (looked up at call time, when patched)
    libdevice.exp2 = lambda v: tl.math.exp2(v)
    libdevice.log2 = lambda v: tl.math.log2(v)
    patch_loop_bounds()
    spec = port.IMPL.spec
    runs = [  # (case, block_m, block_p)
        ({"Bd": 1, "L": 19, "Bp": 1, "Q": 5, "C": 0, "Hq": 2, "Hkv": 1, "D": 32, "ragged": 0}, 16, 1),
        ({"Bd": 3, "L": 150, "Bp": 2, "Q": 37, "C": 150, "Hq": 8, "Hkv": 2, "D": 32, "ragged": 1}, 32, 2),
        ({"Bd": 2, "L": 100, "Bp": 2, "Q": 21, "C": 40, "Hq": 3, "Hkv": 3, "D": 16, "ragged": 1}, 16, 4),
        ({"Bd": 2, "L": 70, "Bp": 1, "Q": 30, "C": 45, "Hq": 6, "Hkv": 2, "D": 64, "ragged": 0}, 64, 4),
    ]
    for params, bm, bp in runs:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "fp16", torch.device("cpu"), seed=5)
        out = spec.make_output(inputs, case, "fp16")
        cfgs = port.default_configs(params, "fp16")
        cfgs["chunked_paged_attention_fwd"] |= {"block_m": bm, "block_p": bp}
        plan = port.IMPL.build(inputs, out, case, "fp16", cfgs)
        res = check_call(plan, out, spec.reference(inputs, case, "fp16"), spec.tolerance("fp16"))
        assert res.ok, (params, bm, bp, res.reason)
        print(f"ok {case.label()} block_m={bm} block_p={bp} rel={res.rel_err:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
