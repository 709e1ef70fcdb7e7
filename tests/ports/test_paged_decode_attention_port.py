"""The paged_decode_attention port's generated Triton code in Triton's CPU interpreter, with real tiles: the
split-KV path (stage 1 + reduce) with partial token tiles, empty trailing splits and GQA groups 1 and 4, and the
one-launch path; fp16 (the interpreter mishandles bf16 casts).  The generated tests (test_ports_generated.py)
only reach the one-launch path on CPU (their short contexts give one split) and run Helion's eager mode."""

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
    from ports.attention import paged_decode_attention as port

    # libdevice stubs have no interpreter implementation; tl.math's do (looked up at call time, when patched)
    libdevice.exp2 = lambda v: tl.math.exp2(v)
    libdevice.log2 = lambda v: tl.math.log2(v)
    patch_loop_bounds()
    spec = port.IMPL.spec
    runs = [  # (case, num_splits, split block sizes [heads, tokens], reduce block sizes); None: the default
        ({"B": 3, "L": 301, "Hq": 8, "Hkv": 2, "D": 64}, 3, [16, 32], [2, 2, 2]),
        ({"B": 2, "L": 700, "Hq": 4, "Hkv": 4, "D": 16}, 5, [16, 16], [4, 4, 2]),  # G = 1, empty last split
        ({"B": 2, "L": 77, "Hq": 6, "Hkv": 2, "D": 32}, 1, [16, 64], None),
        # the defaults of the quick rows' GQA group 5 / D 128 (4 splits of ragged 512/401-token contexts, partial
        # 64-token tiles) and group 4 / D 256 (BLOCK_N 32), and of a B=1 row: 64 splits in one reduce tile
        ({"B": 2, "L": 512, "Hq": 5, "Hkv": 1, "D": 128}, None, None, None),
        ({"B": 3, "L": 300, "Hq": 4, "Hkv": 1, "D": 256}, None, None, None),
        ({"B": 1, "L": 8192, "Hq": 5, "Hkv": 1, "D": 128}, None, None, None),
    ]
    for params, splits, split_blocks, reduce_blocks in runs:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "fp16", torch.device("cpu"), seed=5)
        out = spec.make_output(inputs, case, "fp16")
        cfgs = port.default_configs(params, "fp16")
        if splits is None:
            splits = cfgs["paged_decode_split"]["num_splits"]
        else:
            cfgs["paged_decode_split"] |= {"num_splits": splits, "block_sizes": split_blocks}
        if reduce_blocks:
            cfgs["paged_decode_reduce"] = {"block_sizes": reduce_blocks, "num_warps": 4}
        plan = port.IMPL.build(inputs, out, case, "fp16", cfgs)
        assert len(plan.launches) == (2 if splits > 1 else 1)
        res = check_call(plan, out, spec.reference(inputs, case, "fp16"), spec.tolerance("fp16"))
        assert res.ok, (params, splits, res.reason)
        print(f"ok {case.label()} splits={splits} rel={res.rel_err:.1e} {cfgs}")


def test_default_sizing_of_the_quick_rows() -> None:
    """Every quick row's split grid: S a power of two, ~2-8 programs per SM (132 SMs on CPU, as on the H100/H200)
    unless one split already gives more or the 128-token minimum split caps S; splits of whole 64-token tiles at
    L = 8K; the reduce covering S in one tile; the K/V loop double-buffered (num_stages 5: 3 or 4 give one buffer,
    see the port's docstring)."""
    from harness.shapes import load_all
    from ports._port import sm_count
    from ports.attention import paged_decode_attention as port

    models = load_all()
    rows = [c.params for m in (models.values() if isinstance(models, dict) else models)
            for c in port.IMPL.spec.cases(m, quick=True)]
    assert rows
    for p in rows:
        cfgs = port.default_configs(p, "bf16")
        split = cfgs["paged_decode_split"]
        s = split["num_splits"]
        per_sm = p["B"] * p["Hkv"] * s / sm_count()
        assert s & (s - 1) == 0 and split["num_stages"] >= 5, (p, split)
        assert 2 <= per_sm <= 8 or (s == 1 and per_sm > 8) or s == p["L"] // 128, (p, s, per_sm)
        assert p["L"] % (64 * s) == 0, (p, s)
        if s > 1:
            assert cfgs["paged_decode_reduce"]["block_sizes"][1] >= s, (p, cfgs)
    scout = port.default_configs({"B": 32, "L": 8192, "Hq": 5, "Hkv": 1, "D": 128}, "bf16")
    assert scout["paged_decode_split"]["num_splits"] == 16  # 512 programs of 512 tokens (was 17: 544, 32 empty)


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _interpret_main()
