"""The sageattn port's generated Triton code in Triton's CPU interpreter, with real tiles: the int8 tensor-core
path (D >= 32; the spec's test cases have D 16 / 8, which take the small-D path) with partial Q and K tiles,
GQA, causal and not, and a K mean split into several chunks; fp16 (the interpreter mishandles bf16 casts)."""

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
    from ports.quantized_attention import sageattn as port

    libdevice.exp2 = lambda v: tl.math.exp2(v)
    patch_loop_bounds()
    spec = port.IMPL.spec
    runs = [  # (case, attention blocks [Q, K], K-quant block, K-mean chunk)
        ({"B": 1, "S": 140, "Hq": 2, "Hkv": 1, "D": 64, "causal": 1}, [64, 32], 64, 64),
        ({"B": 1, "S": 90, "Hq": 2, "Hkv": 2, "D": 96, "causal": 0}, [32, 64], 32, None),
    ]
    for params, attn_blocks, quant_block, chunk in runs:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "fp16", torch.device("cpu"), seed=5)
        out = spec.make_output(inputs, case, "fp16")
        cfgs = port.default_configs(params, "fp16")
        cfgs["sage_attn"] |= {"block_sizes": attn_blocks}
        cfgs["sage_k_quant"] |= {"block_sizes": [quant_block, 1]}
        if chunk:
            port.colsum_chunk = lambda b, h, s, c=chunk: c  # several chunks at a short S
        plan = port.IMPL.build(inputs, out, case, "fp16", cfgs)
        res = check_call(plan, out, spec.reference(inputs, case, "fp16"), spec.tolerance("fp16"))
        assert res.ok, (params, res.reason)
        print(f"ok {case.label()} rel={res.rel_err:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
