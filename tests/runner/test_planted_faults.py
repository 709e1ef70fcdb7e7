"""Planted faults (tests/runner/planted.py) through the real runner, Helion interpret mode on CPU: each must end
`incorrect` with no time, and the control port must pass."""

from __future__ import annotations

import json

import pytest

from harness import registry
from harness.results import RunWriter, read_rows, read_samples
from harness.runner import RowPlan, Runner, RunOptions


@pytest.fixture
def planted_env(monkeypatch):
    monkeypatch.setenv("HELION_BENCH_EXTRA_MODULES", "tests.runner.planted")
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()
    yield
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()


def _run(tmp_path, plans):
    writer = RunWriter(tmp_path / "run", {"seed": 0})
    opts = RunOptions(device="cpu", timeout_s=120, first_timeout_s=240, env={"HELION_INTERPRET": "1"})
    Runner(writer, opts).run(plans)
    return {r["impl"]: r for r in read_rows(tmp_path / "run")}, tmp_path / "run"


PAIR = {"T": 4096, "H": 64}


def test_planted_faults_are_incorrect_and_untimed(planted_env, tmp_path):
    impls = ["good_port", "zero_row", "ignores_weights", "precomputed", "unwritten_second", "stale_after_n"]
    plans = [RowPlan("planted_pair", "test", i, "test", "test", dict(PAIR), "fp32") for i in impls]
    plans.append(RowPlan("silu_and_mul", "activation", "zero_row", "test", "test", {"R": 16384, "N": 64}, "bf16"))
    rows, run_dir = _run(tmp_path, plans)
    assert rows["good_port"]["status"] == "ok", rows["good_port"]
    expected = {
        "zero_row": "local bound",  # the planted_pair row and the silu_and_mul row (same provider name)
        "ignores_weights": "rel_err",
        "precomputed": "inputs rewritten after prepare",
        "unwritten_second": "s: ",
        "stale_after_n": "rewritten inputs",
    }
    by_kernel = {(r["kernel"], r["impl"]): r for r in read_rows(run_dir)}
    for (kernel, impl), r in by_kernel.items():
        if impl == "good_port":
            continue
        assert r["status"] == "incorrect", (kernel, impl, r)
        assert expected[impl] in r["error"], (kernel, impl, r["error"])
        assert r["median_us"] is None and r["eager_us"] is None
    silu = by_kernel[("silu_and_mul", "zero_row")]
    assert "row 5461 of 16384" in silu["error"] and "global" in silu["error"]  # the global ratio alone passed
    timed = {json.loads(json.dumps(k))[1] for k in read_samples(run_dir)}
    assert timed == {"good_port"}
