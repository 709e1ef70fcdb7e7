"""Tests every Helion port gets without writing any: one set per port module found by file name.

* interpret mode (conftest) on each of the spec's odd-sized test cases and each dtype the port has: the harness
  checker (every output poisoned, global and per-row bounds), then the same prepared callable on inputs rewritten
  in place (the worker's rewrite: no work in prepare), then once more (every call rewrites every output);
* the default configs name every kernel the port launches, for its test cases and every model case of the spec;
* (slow) every launch compiled to an sm_90 cubin with the default configs, at the check and test shapes.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.correctness import check_call
from harness.shapes import available_models, load_model
from harness.worker import rewrite_inputs
from tests.ports.conftest import port_modules

ROOT = Path(__file__).resolve().parent.parent.parent
CPU = torch.device("cpu")
PORTS = port_modules()


def _impl(module: str):
    return importlib.import_module(module).IMPL


def _port_cases() -> list[tuple[str, object, str]]:
    out = []
    for module in PORTS:
        impl = _impl(module)
        for case in impl.spec.test_cases():
            for dtype in impl.spec.dtypes:
                if impl.dtype_reason(dtype) or impl.spec.invalid_reason(case, dtype) or impl.case_reason(case, dtype):
                    continue
                out.append((module, case, dtype))
    return out


@pytest.mark.parametrize(("module", "case", "dtype"), _port_cases(),
                         ids=lambda v: v.label() if hasattr(v, "label") else str(v).replace("ports.", ""))
def test_port_passes_the_gate_in_interpret_mode(module: str, case, dtype: str) -> None:
    impl = _impl(module)
    spec = impl.spec
    inputs = spec.make_inputs(case, dtype, CPU, seed=11)
    out = spec.make_output(inputs, case, dtype)
    tol = spec.tolerance(dtype)
    prepared = impl.prepare(inputs, out, case, dtype)
    res = check_call(prepared.fn, out, spec.reference(inputs, case, dtype), tol)
    assert res.ok, res.reason
    rewrite_inputs(spec, inputs, case, dtype, CPU, seed=12)
    ref = spec.reference(inputs, case, dtype)
    for what in ("inputs rewritten after prepare", "a second call"):
        res = check_call(prepared.fn, out, ref, tol)
        assert res.ok, f"{what}: {res.reason}"
    assert prepared.info["config_source"] and prepared.info["config"]
    assert prepared.relayout is None  # a port reads every data input in its timed callable


@pytest.mark.parametrize("module", PORTS)
def test_default_configs_cover_every_launch(module: str) -> None:
    impl = _impl(module)
    spec = impl.spec
    for case in spec.test_cases():
        for dtype in spec.dtypes:
            if impl.dtype_reason(dtype) or spec.invalid_reason(case, dtype) or impl.case_reason(case, dtype):
                continue
            cfgs = impl.default_configs(impl.case_dims(case), dtype)
            inputs = spec.make_inputs(case, dtype, CPU, seed=0)
            names = {ln.config_name for ln in impl.launches(inputs, spec.make_output(inputs, case, dtype), case,
                                                               dtype, cfgs)}
            assert names <= set(cfgs), f"{case.label()} {dtype}: no default config for {names - set(cfgs)}"
    n = 0
    for model in available_models():
        for case in spec.cases(load_model(model)):
            for dtype in spec.dtypes:
                if impl.dtype_reason(dtype) or spec.invalid_reason(case, dtype):
                    continue
                cfgs = impl.default_configs(impl.case_dims(case), dtype)  # a pure function of the dims
                assert cfgs and all(isinstance(c, dict) for c in cfgs.values()), (model, case.label())
                n += 1
    assert n or not any(spec.cases(load_model(m)) for m in available_models())


@pytest.fixture(scope="module")
def sm90_log() -> str:
    """Every port's launches compiled for sm_90, in two processes at once (one helion import each, not one per
    port: CI time), their output joined."""
    env = {k: v for k, v in os.environ.items() if k not in ("HELION_INTERPRET", "TRITON_INTERPRET")}
    halves = [PORTS[0::2], PORTS[1::2]]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "ports" / "codegen_check.py"), "--port",
                               ",".join(h)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for h in halves if h]
    return "".join(p.communicate(timeout=1500)[0] for p in procs)


@pytest.mark.slow
@pytest.mark.parametrize("module", PORTS)
def test_generated_triton_compiles_for_sm90(module: str, sm90_log: str) -> None:
    mine = [ln for ln in sm90_log.splitlines() if ln.split()[1:2] == [module]]
    failed = [ln for ln in mine if ln.startswith("FAIL")]
    assert not failed, "\n".join(failed)[-6000:]
    assert any(ln.startswith("ok ") for ln in mine), sm90_log[-3000:]
