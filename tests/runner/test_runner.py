"""Runner isolation and the correctness gate, end to end through worker processes, on the CPU."""

from __future__ import annotations

import json

import pytest

from harness import registry
from harness.results import RunWriter, read_rows, read_samples
from harness.runner import RowPlan, Runner, RunOptions


@pytest.fixture
def fake_env(monkeypatch):
    monkeypatch.setenv("HELION_BENCH_EXTRA_MODULES", "tests.runner.fakes")
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()
    yield
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()


def _run(tmp_path, impls, ns=(37, 64), timeout=20.0):
    plans = [RowPlan("fake_scale", "test", impl, "test", "test", {"n": n}, "fp32") for impl in impls for n in ns]
    writer = RunWriter(tmp_path / "run", {"seed": 0})
    opts = RunOptions(device="cpu", timeout_s=timeout, first_timeout_s=timeout)
    runner = Runner(writer, opts)
    runner.run(plans)
    rows = read_rows(tmp_path / "run")
    return {(r["impl"], json.loads(r["shape"])["n"]): r for r in rows}, runner, tmp_path / "run"


def test_good_impl_is_ok_with_timing_and_samples(fake_env, tmp_path):
    rows, runner, run_dir = _run(tmp_path, ["good"])
    for n in (37, 64):
        r = rows[("good", n)]
        assert r["status"] == "ok", r
        assert r["rel_err"] == 0.0
        assert r["median_us"] > 0 and r["p20_us"] <= r["median_us"] <= r["p80_us"]
        assert json.loads(r["config"]) == {"BLOCK": 64}
    assert len(read_samples(run_dir)) == 2
    assert runner.versions == {"fakeup": "1.2.3"}
    log = (run_dir / "logs" / "fake_scale__good.log").read_text()  # where each row's time went
    assert log.count("row phases (s): fake_scale test") == 2 and "rewrite check" in log and "rechecks" in log


@pytest.mark.parametrize("impl,needle", [
    ("wrong", "rel_err"),
    ("unwritten", "NaN/Inf"),
    ("zeroed", "rel_err 1.000e+00"),
])
def test_checker_catches_bad_outputs(fake_env, tmp_path, impl, needle):
    rows, _, run_dir = _run(tmp_path, [impl], ns=(64,))
    r = rows[(impl, 64)]
    assert r["status"] == "incorrect"
    assert needle in r["error"]
    assert r["median_us"] is None and r["eager_us"] is None  # no time for an incorrect impl
    assert read_samples(run_dir) == {}


def test_exception_costs_only_its_row(fake_env, tmp_path):
    rows, _, _ = _run(tmp_path, ["raises", "good"])
    assert rows[("raises", 37)]["status"] == "error"
    assert "kernel launch failed" in rows[("raises", 37)]["error"]
    assert rows[("good", 64)]["status"] == "ok"


def test_crash_is_isolated_and_the_rest_still_runs(fake_env, tmp_path):
    rows, _, _ = _run(tmp_path, ["crashes", "good"])
    assert rows[("crashes", 37)]["status"] == "error"
    assert "worker died (signal 11)" in rows[("crashes", 37)]["error"]
    assert rows[("crashes", 64)]["status"] == "ok"  # a fresh worker took the remaining row
    assert rows[("good", 37)]["status"] == "ok"


def test_next_group_is_started_ahead_and_waits_for_go(fake_env, tmp_path):
    """The next group's worker does its imports while the current group runs; it starts rows only on `go`,
    and a crash in the current group neither loses nor reorders the started-ahead group's rows."""
    rows, runner, run_dir = _run(tmp_path, ["crashes", "good", "wrong"])
    assert rows[("crashes", 37)]["status"] == "error" and rows[("crashes", 64)]["status"] == "ok"
    assert [rows[("good", n)]["status"] for n in (37, 64)] == ["ok", "ok"]
    assert [rows[("wrong", n)]["status"] for n in (37, 64)] == ["incorrect", "incorrect"]
    logs = {p.name: p.read_text() for p in (run_dir / "logs").iterdir()}
    assert "waits for go" not in logs["fake_scale__crashes.log"]  # the first group starts at once
    assert "started ahead: waits for go" in logs["fake_scale__good.log"]
    assert "started ahead: waits for go" in logs["fake_scale__wrong.log"]
    assert runner.counts == {"error": 1, "ok": 3, "incorrect": 2}


def test_hang_times_out_and_the_rest_still_runs(fake_env, tmp_path):
    rows, _, _ = _run(tmp_path, ["hangs"], timeout=8.0)
    assert rows[("hangs", 37)]["status"] == "timeout"
    assert "timeout" in rows[("hangs", 37)]["error"]
    assert rows[("hangs", 64)]["status"] == "ok"


def test_unavailable_impl_gives_reason_rows(fake_env, tmp_path):
    rows, _, _ = _run(tmp_path, ["missing", "good"])
    r = rows[("missing", 37)]
    assert r["status"] == "unavailable"
    assert r["error"] == "unavailable: fakeup 9.9 not installed and no cache at .up/fakeup"
    assert rows[("good", 37)]["status"] == "ok"


def test_check_sweep_writes_the_availability_matrix(fake_env, tmp_path, capsys):
    import csv

    from harness.cli import main

    rc = main(["check", "--kernel", "fake_scale", "--impl", "good,wrong,missing,raises", "--device", "cpu",
               "--out", str(tmp_path), "--timeout", "30", "--first-timeout", "30"])
    assert rc == 0
    with (tmp_path / "availability.csv").open() as f:
        matrix = {r["provider"]: r for r in csv.DictReader(f)}
    assert matrix["good"]["status"] == "pass"
    assert matrix["wrong"]["status"] == "fail" and "rel_err" in matrix["wrong"]["reason"]
    assert matrix["raises"]["status"] == "fail" and "kernel launch failed" in matrix["raises"]["reason"]
    assert matrix["missing"]["status"] == "unavailable" and "fakeup 9.9" in matrix["missing"]["reason"]
    md = (tmp_path / "availability.md").read_text()
    assert "| fake_scale | test | good | pass |" in md


def test_check_jobs_run_groups_at_once_and_isolated(fake_env, tmp_path):
    """--jobs: groups run concurrently; a hang, a crash and wrong numbers still cost only their own rows, every
    row is written once, and each job slot's worker sees its own CUDA_VISIBLE_DEVICES."""
    impls = ["good", "good2", "wrong", "crashes", "hangs"]
    plans = [RowPlan("fake_scale", "test", impl, "test", "test", {"n": n}, "fp32") for impl in impls for n in (37, 64)]
    writer = RunWriter(tmp_path / "run", {"seed": 0})
    opts = RunOptions(device="cpu", timeout_s=8.0, first_timeout_s=8.0, check_only=True, jobs=3, gpus=("7", "9"))
    Runner(writer, opts).run(plans)
    rows = read_rows(tmp_path / "run")
    assert sorted((r["impl"], json.loads(r["shape"])["n"]) for r in rows) == sorted(
        (i, n) for i in impls for n in (37, 64))
    got = {(r["impl"], json.loads(r["shape"])["n"]): r for r in rows}
    assert got[("hangs", 37)]["status"] == "timeout" and got[("hangs", 64)]["status"] == "ok"
    assert got[("crashes", 37)]["status"] == "error" and got[("crashes", 64)]["status"] == "ok"
    assert got[("wrong", 64)]["status"] == "incorrect"
    assert got[("good2", 37)]["notes"] in ("slot 7", "slot 9")


def test_check_jobs_rerun_oom_rows_alone(fake_env, tmp_path, monkeypatch):
    """A row that ran out of GPU memory beside other jobs is not a failing port: it runs again after the parallel
    phase, alone, and says so in its notes; one that runs out of memory alone too stays an OOM error."""
    monkeypatch.setenv("HELION_BENCH_FAKE_OOM_DIR", str(tmp_path))
    plans = [RowPlan("fake_scale", "test", impl, "test", "test", {"n": n}, "fp32")
             for impl in ("good", "crowded") for n in (37, 64)]
    writer = RunWriter(tmp_path / "run", {"seed": 0})
    opts = RunOptions(device="cpu", timeout_s=20.0, first_timeout_s=20.0, check_only=True, jobs=2)
    runner = Runner(writer, opts)
    runner.run(plans)
    rows = read_rows(tmp_path / "run")
    assert len(rows) == 4  # each row written once: the withheld attempts leave no row behind
    got = {(r["impl"], json.loads(r["shape"])["n"]): r for r in rows}
    assert got[("crowded", 37)]["status"] == "ok"
    assert "run alone after a CUDA OOM" in got[("crowded", 37)]["notes"]
    assert got[("crowded", 64)]["status"] == "error" and got[("crowded", 64)]["error"].startswith("OOM: ")
    assert not got[("good", 37)]["notes"]
    assert runner.counts == {"ok": 3, "error": 1}


def test_oom_is_not_retried_in_a_serial_run(fake_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HELION_BENCH_FAKE_OOM_DIR", str(tmp_path))
    rows, _, _ = _run(tmp_path, ["crowded"], ns=(37,))
    assert rows[("crowded", 37)]["status"] == "error" and rows[("crowded", 37)]["error"].startswith("OOM: ")


def test_jobs_refused_for_timed_runs(tmp_path):
    writer = RunWriter(tmp_path / "run", {"seed": 0})
    with pytest.raises(ValueError, match="correctness-only"):
        Runner(writer, RunOptions(device="cpu", jobs=2)).run(
            [RowPlan("fake_scale", "test", "good", "test", "test", {"n": 3}, "fp32")])


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    from harness.results import new_run_dir

    a = new_run_dir(tmp_path, "20261125T000000Z-moe")
    b = new_run_dir(tmp_path, "20261125T000000Z-moe")
    assert a != b and a.is_dir() and b.is_dir() and b.name == "20261125T000000Z-moe-2"


def test_case_reason_makes_only_that_row_unavailable(fake_env, tmp_path):
    rows, _, _ = _run(tmp_path, ["picky"])
    assert rows[("picky", 37)]["status"] == "unavailable"
    assert rows[("picky", 37)]["error"] == "unavailable: picky kernel needs n % 8 == 0"
    assert rows[("picky", 64)]["status"] == "ok"


def test_tokens_filter_knows_every_token_axis_and_keeps_specs_without_one():
    """The latency axis is the token dim the run recorded (metadata token_dims = each spec's token_dim), not a
    guess from the dim's name; old runs without the record fall back to the guess."""
    from harness.cli import token_dims
    from harness.results import token_count, token_dim

    meta = {"token_dims": {"fused_moe": "M", "lora": "T", "sampler": "B", "router": None}}
    assert token_count(meta, "fused_moe", {"M": 8, "K": 1}) == 8
    assert token_count(meta, "lora", {"T": 2048, "H": 1}) == 2048
    assert token_count(meta, "sampler", {"B": 4, "V": 1000}) == 4  # a name the guess never knew
    assert token_count(meta, "router", {"M": 64, "E": 8}) is None  # recorded as no token axis: M is not tokens
    # a run written before token_dims: the old guess
    assert token_dim({}, "fused_moe", {"M": 8, "K": 1}) == "M"
    assert token_count({}, "lora", {"T": 2048}) == 2048 and token_count({}, "sampler", {"B": 4}) is None
    # what the bench records is each spec's own declaration
    specs = registry.specs()
    dims = token_dims(sorted(specs))
    assert dims == {k: s.token_dim for k, s in specs.items()}
    assert any(d is None for d in dims.values()) and {"M", "T"} <= set(dims.values())


def test_stopped_sweep_keeps_finished_rows_marked_incomplete(fake_env, tmp_path):
    """The plan is written first and the completion mark last: a sweep stopped half way keeps every finished row,
    reads as incomplete (refused by default) and is readable on request."""
    from harness.results import RunError, read_run

    plans = [RowPlan("fake_scale", "test", "good", "test", "test", {"n": n}, "fp32") for n in (37, 64)]
    writer = RunWriter(tmp_path / "run", {"seed": 0}, planned_rows=4)
    Runner(writer, RunOptions(device="cpu", timeout_s=20, first_timeout_s=20)).run(plans)  # stopped: no finish()
    with (tmp_path / "run" / "results.csv").open("a") as f:
        f.write("fake_scale,test,good,test,test,")  # the row in flight when it was killed
    with pytest.raises(RunError, match=r"results.csv: line 4: cut mid-row"):
        read_run(tmp_path / "run")
    rows, samples, meta = read_run(tmp_path / "run", allow_incomplete=True)
    assert [r["status"] for r in rows] == ["ok", "ok"] and len(samples) == 2
    assert meta["planned_rows"] == 4 and "complete" not in meta


def test_finished_run_is_complete_with_compressed_samples(fake_env, tmp_path):
    import gzip

    from harness.results import read_run

    plans = [RowPlan("fake_scale", "test", "good", "test", "test", {"n": n}, "fp32") for n in (37, 64)]
    writer = RunWriter(tmp_path / "run", {"seed": 0}, planned_rows=2)
    Runner(writer, RunOptions(device="cpu", timeout_s=20, first_timeout_s=20)).run(plans)
    plain = (tmp_path / "run" / "samples.jsonl").read_bytes()
    before = read_samples(tmp_path / "run")
    writer.finish()
    assert not (tmp_path / "run" / "samples.jsonl").exists()
    assert gzip.decompress((tmp_path / "run" / "samples.jsonl.gz").read_bytes()) == plain
    rows, samples, meta = read_run(tmp_path / "run")
    assert samples == before and meta["complete"] == {"rows": 2} and len(rows) == 2
