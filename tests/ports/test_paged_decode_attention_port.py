"""The paged_decode_attention port's generated Triton code in Triton's CPU interpreter, with real tiles: the
split-KV path (stage 1 + reduce) with partial token tiles, empty trailing splits and GQA groups 1 and 4, and the
one-launch path; fp16 (the interpreter mishandles bf16 casts).  The generated tests (test_ports_generated.py)
only reach the one-launch path on CPU (their short contexts give one split) and run Helion's eager mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent


def _interpret_main() -> None:
    import torch
    import triton.language as tl
    import triton.runtime.interpreter as interp
    from triton.language.extra import libdevice

    from harness.correctness import check_call
    from harness.spec import Case
    from ports.attention import paged_decode_attention as port

    # libdevice stubs have no interpreter implementation; tl.math's do (looked up at call time, when patched)
    libdevice.exp2 = lambda v: tl.math.exp2(v)
    libdevice.log2 = lambda v: tl.math.log2(v)
    patch_tensor = interp._patch_lang_tensor

    def patch(tensor, scope):  # a loop bound reduced from a block is a 1-element array in the interpreter
        patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = patch
    spec = port.IMPL.spec
    runs = [  # (case, num_splits, split block sizes [heads, tokens], reduce block sizes)
        ({"B": 3, "L": 301, "Hq": 8, "Hkv": 2, "D": 64}, 3, [16, 32], [2, 2, 2]),
        ({"B": 2, "L": 700, "Hq": 4, "Hkv": 4, "D": 16}, 5, [16, 16], [4, 4, 2]),  # G = 1, empty last split
        ({"B": 2, "L": 77, "Hq": 6, "Hkv": 2, "D": 32}, 1, [16, 64], None),
    ]
    for params, splits, split_blocks, reduce_blocks in runs:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "fp16", torch.device("cpu"), seed=5)
        out = spec.make_output(inputs, case, "fp16")
        cfgs = port.default_configs(params, "fp16")
        cfgs["paged_decode_split"] |= {"num_splits": splits, "block_sizes": split_blocks}
        if reduce_blocks:
            cfgs["paged_decode_reduce"] = {"block_sizes": reduce_blocks, "num_warps": 4}
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
