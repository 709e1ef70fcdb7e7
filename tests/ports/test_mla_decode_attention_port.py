"""The mla_decode_attention port's generated Triton code in Triton's CPU interpreter, with real tiles: the split-KV
path (split stage + reduce) with partial token and head tiles and an empty trailing split, the one-launch path,
and Hq = 1 (a stride-0 head pair) on both paths; fp16 (the interpreter mishandles bf16 casts)."""

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
    from ports.attention import mla_decode_attention as port

    libdevice.exp2 = lambda v: tl.math.exp2(v)
    libdevice.log2 = lambda v: tl.math.log2(v)
    patch_loop_bounds()
    spec = port.IMPL.spec
    runs = [  # (case, num_splits, split block sizes [heads, tokens], reduce block sizes)
        ({"B": 2, "L": 400, "Hq": 20, "R": 64, "P": 16, "Dqk": 20}, 7, [16, 32], [4, 32, 4, 4]),
        ({"B": 3, "L": 150, "Hq": 5, "R": 24, "P": 8, "Dqk": 20}, 3, [16, 32], [2, 16, 2, 2]),
        ({"B": 2, "L": 150, "Hq": 1, "R": 24, "P": 8, "Dqk": 20}, 2, [16, 32], [1, 16, 2, 2]),
        ({"B": 2, "L": 70, "Hq": 1, "R": 24, "P": 8, "Dqk": 20}, 1, [16, 32], None),
        ({"B": 2, "L": 77, "Hq": 6, "R": 32, "P": 8, "Dqk": 20}, 1, [16, 64], None),
    ]
    for params, splits, split_blocks, reduce_blocks in runs:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "fp16", torch.device("cpu"), seed=5)
        out = spec.make_output(inputs, case, "fp16")
        cfgs = port.default_configs(params, "fp16")
        cfgs["mla_decode_split"] |= {"num_splits": splits, "block_sizes": split_blocks}
        if reduce_blocks:
            cfgs["mla_decode_reduce"] = {"block_sizes": reduce_blocks, "num_warps": 4}
        plan = port.IMPL.build(inputs, out, case, "fp16", cfgs)
        assert len(plan.launches) == (2 if splits > 1 else 1)
        res = check_call(plan, out, spec.reference(inputs, case, "fp16"), spec.tolerance("fp16"))
        assert res.ok, (params, splits, res.reason)
        print(f"ok {case.label()} splits={splits} rel={res.rel_err:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
