"""`bench --gpus`: one timing worker per GPU, every provider of a (kernel, model) on one GPU, groups balanced by
expected cost; `partition` (also what cuts `--shard`s) is deterministic, disjoint and whole-group."""

from __future__ import annotations

import json

import pytest

from harness import registry
from harness.results import COLUMNS, RunWriter, read_rows
from harness.runner import RowPlan, Runner, RunOptions, group_of, partition, row_cost
from tests.report.runs import plain_results


@pytest.fixture
def fake_env(monkeypatch):
    monkeypatch.setenv("HELION_BENCH_EXTRA_MODULES", "tests.runner.fakes")
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()
    yield
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()


def _plan(kernels=("k1", "k2", "k3"), models=("m1", "m2", "m3", "m4"), impls=("a", "b"), shapes=3):
    return [RowPlan(k, "test", i, m, "decode", {"n": s}, "bf16")
            for k in kernels for m in models for s in range(shapes) for i in impls]


def test_partition_is_whole_groups_disjoint_complete_and_deterministic():
    rows = _plan()
    cost = row_cost({"k1": 5.0, "k2": 1.0})  # k3 unknown: the mean of the known ones
    for n in (1, 2, 3, 5, 12, 20):
        bins = partition(rows, n, cost)
        assert len(bins) == n
        assert sorted(map(repr, (r for b in bins for r in b))) == sorted(map(repr, rows))  # union, no duplicate
        owner = {}
        for b, part in enumerate(bins):
            for r in part:
                assert owner.setdefault(group_of(r), b) == b  # a (kernel, model) never splits
        assert partition(list(rows), n, cost) == bins  # the same plan gives the same cut
        for part in bins:  # plan order kept inside a bin
            assert part == [r for r in rows if r in part]


def test_partition_balances_expected_cost():
    rows = _plan(kernels=("big", "small"), models=tuple(f"m{i}" for i in range(8)))
    cost = row_cost({"big": 10.0, "small": 1.0})
    loads = [sum(cost(r) for r in part) for part in partition(rows, 4, cost)]
    group = 6 * 10.0  # one (big, model) group: 3 shapes x 2 impls
    assert max(loads) - min(loads) <= group  # longest-first greedy: within one group of each other
    assert max(loads) <= sum(loads) / 4 + group


def test_row_cost_defaults():
    r = RowPlan("k", "test", "a", "m", "decode", {}, "bf16")
    assert row_cost({})(r) == 1.65
    assert row_cost({"other": 2.0, "x": 4.0})(r) == 3.0
    assert row_cost({"k": 0.5})(r) == 0.5


def test_gpus_run_at_once_each_group_on_one_gpu(fake_env, tmp_path):
    """Two GPUs: one results.csv with the GPU of every row; every provider of a (kernel, model) ran on the same
    GPU (good2 reports the CUDA_VISIBLE_DEVICES its worker saw); both GPUs got work; row costs are reported."""
    models = [f"m{i}" for i in range(4)]
    plans = [RowPlan("fake_scale", "test", impl, m, "test", {"n": n}, "fp32")
             for m in models for n in (37, 64) for impl in ("good", "good2")]
    writer = RunWriter(tmp_path / "run", {"seed": 0}, planned_rows=len(plans))
    runner = Runner(writer, RunOptions(device="cpu", timeout_s=30, first_timeout_s=60, gpus=("7", "9"),
                                       expected_row_cost_s={"fake_scale": 1.0}))
    runner.run(plans)
    writer.finish()
    rows = read_rows(tmp_path / "run")
    assert COLUMNS[-1] == "gpu" and len(rows) == len(plans)
    assert all(r["status"] == "ok" for r in rows)
    by_model: dict[str, set[str]] = {}
    for r in rows:
        by_model.setdefault(r["model"], set()).add(r["gpu"])
        if r["impl"] == "good2":
            assert r["notes"] == f"slot {r['gpu']}"
    assert all(len(g) == 1 for g in by_model.values()), by_model
    assert set().union(*by_model.values()) == {"7", "9"}
    logs = {p.name for p in (tmp_path / "run" / "logs").iterdir()}
    assert {"fake_scale__good__gpu7.log", "fake_scale__good__gpu9.log"} <= logs
    costs = runner.row_cost_s()
    assert set(costs) == {"fake_scale"} and costs["fake_scale"] > 0
    assert sum(len(v) for v in runner.row_seconds.values()) == len(plans)


def test_single_gpu_and_cpu_rows_record_their_gpu(fake_env, tmp_path):
    plans = [RowPlan("fake_scale", "test", "good", "test", "test", {"n": 64}, "fp32")]
    writer = RunWriter(tmp_path / "run", {"seed": 0})
    Runner(writer, RunOptions(device="cpu", timeout_s=30, first_timeout_s=60)).run(plans)
    assert read_rows(tmp_path / "run")[0]["gpu"] is None  # CPU: no device index
    writer = RunWriter(tmp_path / "run3", {"seed": 0})
    Runner(writer, RunOptions(device="cpu", timeout_s=30, first_timeout_s=60, gpus=("3",))).run(plans)
    assert read_rows(tmp_path / "run3")[0]["gpu"] == "3"


def test_runs_written_before_the_gpu_column_still_read(tmp_path):
    """An old results.csv (no `gpu` column) reads with gpu empty, through read_rows and load."""
    from harness.results import LEGACY_COLUMNS, load

    writer = RunWriter(tmp_path / "old", {"seed": 0, "gpu": "NVIDIA H100 80GB HBM3", "gpu_slug": "h100"})
    writer.add({"kernel": "k", "category": "c", "impl": "a", "model": "m", "regime": "decode",
                "shape": json.dumps({"M": 1}), "dtype": "bf16", "status": "unavailable", "error": "x", "gpu": "0"})
    writer.finish()
    csv_path = plain_results(tmp_path / "old")
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([",".join(LEGACY_COLUMNS), lines[1].rsplit(",", 1)[0]]) + "\n")
    (row,) = read_rows(tmp_path / "old")
    assert row["gpu"] is None and row["status"] == "unavailable"
    df = load(tmp_path / "old")
    assert list(df["gpu"]) == ["NVIDIA H100 80GB HBM3"] and df["gpu_index"].isna().all()
