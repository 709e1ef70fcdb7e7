"""`harness check --all` (what `make check` passes): the default selection, narrowed by any filter given with it."""

from __future__ import annotations

import io
import sys

from harness import cli, registry
from harness.results import RunWriter
from harness.runner import Runner, RunOptions, plan_rows
from harness.shapes import load_all
from tests.cli.conftest import PlanOnly


def _key(r):
    return (r.kernel, r.impl, r.model, r.regime, repr(r.params), r.dtype)


def _check(tmp_path, *argv: str) -> list:
    assert cli.main(["check", *argv, "--device", "cpu", "--out", str(tmp_path)]) == 0
    return PlanOnly.plans


def test_all_alone_is_the_full_plan(plan_only, tmp_path):
    """`make check` with no ARGS: every kernel, every check case, dtype and provider, as before --all kept filters."""
    want = []
    for k, spec in sorted(registry.specs().items()):
        want += [(k, p, c.model, c.regime, repr(dict(c.params)), d) for c in spec.check_cases() for d in spec.dtypes
                 for p in registry.providers(k)]
    got = [_key(r) for r in _check(tmp_path / "all", "--all")]
    assert sorted(got) == sorted(want) and len(got) == len(want)
    assert {r.impl for r in plan_only.plans} > {registry.HELION}  # the upstream providers are in it too
    # --all is the default: the same plan, in the same order, without it
    assert [_key(r) for r in _check(tmp_path / "none")] == got


def test_all_keeps_impl(plan_only, tmp_path):
    rows = _check(tmp_path, "--all", "--impl", registry.HELION)
    assert rows and {r.impl for r in rows} == {registry.HELION}
    full = [r for r in _check(tmp_path / "full", "--all") if r.impl == registry.HELION]
    assert sorted(map(_key, rows)) == sorted(map(_key, full))


def test_all_shapes_keeps_kernel_and_impl(plan_only, tmp_path):
    """The README's `make check ARGS="--shapes --impl helion --quick ..."` plus a --kernel: only those rows."""
    rows = _check(tmp_path, "--all", "--shapes", "--impl", registry.HELION, "--quick", "--kernel", "silu_and_mul")
    assert rows and {(r.kernel, r.impl) for r in rows} == {("silu_and_mul", registry.HELION)}
    bench = plan_rows(["silu_and_mul"], load_all(), [registry.HELION], None, quick=True)
    assert sorted(map(_key, rows)) == sorted(map(_key, bench))


def test_runner_logs_to_the_stderr_of_its_construction(monkeypatch, tmp_path):
    """Runner's default log is sys.stderr when it is built, not when harness.runner was imported: a stream bound at
    import (e.g. a pytest capsys one, closed after its test) must not be written to later."""
    first, second = io.StringIO(), io.StringIO()
    for stream in (first, second):
        monkeypatch.setattr(sys, "stderr", stream)
        runner = Runner(RunWriter(tmp_path / f"run{id(stream)}", {"seed": 0}), RunOptions(device="cpu"))
        runner.row_seconds["k"] = [1.0]
        runner.report_row_costs()
    assert "row cost per kernel" in first.getvalue() and "row cost per kernel" in second.getvalue()
