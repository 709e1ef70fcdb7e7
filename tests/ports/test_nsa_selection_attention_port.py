"""The nsa_selection_attention port's two paths with real tiles.  The generated tests (test_ports_generated.py)
reach only the path the default configs pick for the spec's small cases (dense-masked); here both paths run
their generated Triton code in Triton's CPU interpreter (partial row / key tiles, G = 1, 3 and 20, fp16: the
interpreter mishandles bf16 casts), and the per-token path is compiled to an sm_90 cubin at a model shape."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import patch_loop_bounds, run_as_script, run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent

RUNS = [  # (case, configs)
    ({"B": 2, "T": 45, "Hq": 3, "Hkv": 1, "D": 16, "BS": 8, "S": 3},
     {"nsa_selection_fwd": {"block_sizes": [16, 16], "num_warps": 4, "num_stages": 2}}),
    ({"B": 1, "T": 70, "Hq": 20, "Hkv": 1, "D": 16, "BS": 16, "S": 3},
     {"nsa_selection_fwd": {"block_sizes": [32, 32], "num_warps": 4, "num_stages": 2}}),
    ({"B": 1, "T": 37, "Hq": 2, "Hkv": 2, "D": 16, "BS": 8, "S": 2},
     {"nsa_selection_dense_fwd": {"block_m": 16, "block_n": 8, "num_warps": 4, "num_stages": 2}}),
    ({"B": 2, "T": 50, "Hq": 6, "Hkv": 2, "D": 32, "BS": 32, "S": 2},
     {"nsa_selection_dense_fwd": {"block_m": 32, "block_n": 16, "num_warps": 4, "num_stages": 2}}),
]


def _interpret_main() -> None:
    import torch
    import triton.language as tl
    from triton.language.extra import libdevice

    from harness.correctness import check_call
    from harness.spec import Case
    from ports.sparse import nsa_selection_attention as port

    libdevice.exp2 = lambda v: tl.math.exp2(v)  # libdevice stubs have no interpreter implementation
    patch_loop_bounds()
    spec = port.IMPL.spec
    for params, cfgs in RUNS:
        case = Case("interp", "test", params)
        inputs = spec.make_inputs(case, "bf16", torch.device("cpu"), seed=5)
        for key in ("q", "k", "v"):
            inputs[key] = inputs[key].to(torch.float16)
        out = torch.empty_like(inputs["q"])
        plan = port.IMPL.build(inputs, out, case, "bf16", cfgs)
        assert [ln.config_name for ln in plan.launches] == list(cfgs)
        res = check_call(plan, out, spec.reference(inputs, case, "bf16"), spec.tolerance("bf16"))
        assert res.ok, (params, res.reason)
        print(f"ok {case.label()} {list(cfgs)[0]} rel={res.rel_err:.1e}")


@pytest.mark.slow
def test_generated_triton_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


def _sm90_main() -> None:
    import torch

    from harness.spec import Case
    from ports._port import split_config
    from ports.sparse import nsa_selection_attention as port
    from tests.ports.sm90_compile import compile_for_sm90

    spec = port.IMPL.spec
    for params in ({"B": 1, "T": 256, "Hq": 16, "Hkv": 1, "D": 128, "BS": 64, "S": 16},
                   {"B": 1, "T": 256, "Hq": 8, "Hkv": 1, "D": 256, "BS": 64, "S": 16}):
        case = Case("sm90", "test", params)
        inputs = spec.make_inputs(case, "bf16", torch.device("cpu"), 0)
        out = spec.make_output(inputs, case, "bf16")
        cfgs = port.default_configs({**params, "T": 65536}, "bf16")  # a long sequence: the per-token path
        dense = port.default_configs(params, "bf16")
        for c in (cfgs, dense):
            for ln in port.IMPL.launches(inputs, out, case, "bf16", c):
                _, cfg = split_config(c[ln.config_name], port.IMPL.host_keys)
                res = compile_for_sm90(ln.kernel, ln.args, cfg)
                print(f"ok {case.label()} {ln.config_name} smem={[r.shared_bytes for r in res]}")


@pytest.mark.slow
def test_both_paths_compile_for_sm90() -> None:
    stdout = run_as_script(__file__, "--sm90")
    assert stdout.count("ok ") == 4, stdout


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _sm90_main() if "--sm90" in sys.argv else _interpret_main()
