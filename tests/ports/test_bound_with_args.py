"""A tensor-descriptor (TMA) config compiles to TMA loads for every shape of a worker, not only the first:
ports/_port.bound_with_args gives Helion the real arguments.  With static_shapes=False one bound kernel serves
every shape, and Helion 1.5.0 keeps only weak references to the tensors of the call that created it; once those
are freed it cannot prove the next shape's bases aligned and silently emits pointer loads (seen on the H200 probe:
157 registers with TMA alone, 191 with cp.async after another shape).  Code generation, not interpret mode: run in
a subprocess without HELION_INTERPRET (this folder's conftest switches the kernels to eager mode)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

DT = "fp8_w8a8_block128"
TMA = {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "indexing": "tensor_descriptor"}
ROOT = Path(__file__).resolve().parents[2]


def _tma_code(params: dict, wrap: bool) -> str:
    """The Triton code of w8a8_block_fp8_matmul's first launch at `params` under the TMA config."""
    import torch

    from harness import registry
    from harness.spec import Case
    from ports._port import bound_with_args, split_config

    impl = registry.get_impl("w8a8_block_fp8_matmul", "helion")
    case = Case("t", "t", params)
    inputs = impl.spec.make_inputs(case, DT, torch.device("cpu"), 0)
    out = impl.spec.make_output(inputs, case, DT)
    configs = impl.default_configs(impl.case_dims(case), DT)
    launch = impl.launches(inputs, out, case, DT, configs)[0]
    _host, cfg = split_config({**configs[launch.config_name], **TMA}, impl.host_keys)
    if wrap:
        with bound_with_args(launch.kernel, launch.args) as bound:
            return bound.to_triton_code(cfg)
    return launch.kernel.bind(tuple(launch.args)).to_triton_code(cfg)


def _child() -> None:
    """Prints {wrap: [TMA at the first shape, TMA at the later shape]}, each wrap in a fresh kernel state."""
    import helion._compat as compat

    from ports.quantization.w8a8_block_fp8_matmul import block_fp8_mm

    compat._supports_tensor_descriptor = lambda: True  # generate as on the H200
    res = {}
    for wrap in (False, True):
        block_fp8_mm.reset()
        first = "tensor_descriptor" in _tma_code({"M": 2048, "N": 4608, "K": 7168, "layer": "t"}, wrap)
        gc.collect()  # the first shape's tensors are gone, as between two rows of a worker
        later = "tensor_descriptor" in _tma_code({"M": 2048, "N": 4096, "K": 7168, "layer": "t"}, wrap)
        res[str(wrap)] = [first, later]
    print(json.dumps(res))


def test_tma_config_keeps_tma_on_a_later_shape() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HELION_INTERPRET", "TRITON_INTERPRET")}
    done = subprocess.run([sys.executable, "-c", "from tests.ports.test_bound_with_args import _child; _child()"],
                          cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = json.loads(done.stdout.strip().splitlines()[-1])
    assert res["True"] == [True, True]  # through bound_with_args: TMA at both shapes
    # plain bind: what Helion 1.5.0 does; when this changes, bound_with_args can go
    assert res["False"] == [True, False]
