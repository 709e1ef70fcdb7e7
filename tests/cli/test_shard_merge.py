"""`bench --shard i/n` + `harness merge`: on the CPU with the fake kernels, n shards merged give exactly the rows
of one unsharded run; a shard that dies leaves the merge incomplete and names it; mismatched runs are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import registry
from harness.cli import main
from harness.results import RunError, read_metadata, read_run
from tests.report.runs import plain_results

SELECT = ["--kernel", "fake_scale", "--impl", "good,wrong,missing", "--model",
          "deepseek-v3,kimi-k2,llama4-maverick,qwen3-235b-a22b,mistral-large-3", "--device", "cpu",
          "--no-report", "--timeout", "60", "--first-timeout", "120", "--costs-from", "none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One unsharded run and its three shards (each run once for the module: workers are slow to start)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HELION_BENCH_EXTRA_MODULES", "tests.runner.fakes")
    registry.specs.cache_clear()
    registry._adapter_impls.cache_clear()
    root = tmp_path_factory.mktemp("shards")
    try:
        assert main(["bench", *SELECT, "--out", str(root / "whole")]) == 0
        for i in range(3):
            assert main(["bench", *SELECT, "--shard", f"{i}/3", "--out", str(root / f"s{i}")]) == 0
    finally:
        mp.undo()
        registry.specs.cache_clear()
        registry._adapter_impls.cache_clear()
    (whole,) = (root / "whole").iterdir()
    shards = [next((root / f"s{i}").iterdir()) for i in range(3)]
    return whole, shards


def _keyed(run: Path) -> dict[tuple, str]:
    rows, _s, _m = read_run(run, allow_incomplete=True)
    return {(r["kernel"], r["impl"], r["model"], r["shape"], r["dtype"]): r["status"] for r in rows}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_shards_merged_equal_the_unsharded_run(runs, tmp_path, capsys):
    whole, shards = runs
    metas = [read_metadata(s) for s in shards]
    assert [m["shard"]["index"] for m in metas] == [0, 1, 2]
    assert {m["shard"]["plan_rows"] for m in metas} == {15} and len({m["shard"]["plan_digest"] for m in metas}) == 1
    parts = [set(_keyed(s)) for s in shards]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])  # disjoint
    for s in shards:  # whole (kernel, model) groups: every provider of a model in the same shard
        models = {k[2] for k in _keyed(s)}
        assert len(_keyed(s)) == 3 * len(models)
    out = tmp_path / "merged"
    assert main(["merge", *map(str, reversed(shards)), "-o", str(out), "--no-report"]) == 0
    assert f"RUN_DIR={out}" in capsys.readouterr().out
    assert _keyed(out) == _keyed(whole)  # same keys, same statuses
    assert set(_keyed(out).values()) == {"ok", "incorrect", "unavailable"}
    rows, samples, meta = read_run(out)  # complete: readable without allow_incomplete
    assert meta["complete"] == {"rows": 15} and meta["planned_rows"] == 15
    assert [m["shard"] for m in meta["merged_from"]] == ["0/3", "1/3", "2/3"]
    assert len(samples) == sum(r["status"] == "ok" for r in rows) == 5
    assert set(meta["row_cost_s"]) == {"fake_scale"} and "shard" not in meta
    assert (out / "samples.jsonl.gz").exists() and (out / "logs" / shards[0].name).is_dir()


def test_whole_run_records_gpus_and_row_costs(runs):
    whole, _shards = runs
    meta = read_metadata(whole)
    assert meta["gpus"] == [] and meta["row_cost_s"]["fake_scale"] > 0 and "shard" not in meta
    assert meta["expected_row_cost_from"].startswith("default")


def test_dead_shard_leaves_the_merge_incomplete_and_named(runs, tmp_path, capsys):
    _whole, shards = runs
    # shard 1 killed after its first row: no completion mark, rows missing
    dead = _copy(shards[1], tmp_path / shards[1].name)
    meta = json.loads((dead / "metadata.json").read_text())
    del meta["complete"]
    (dead / "metadata.json").write_text(json.dumps(meta))
    lines = plain_results(dead).read_text().splitlines(keepends=True)
    (dead / "results.csv").write_text("".join(lines[:2]))
    out = tmp_path / "merged"
    assert main(["merge", str(shards[0]), str(dead), str(shards[2]), "-o", str(out), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "INCOMPLETE" in err and f"shard 1/3 ({dead.name}) stopped after 1 of {len(lines) - 1} rows" in err
    assert "missing rows: fake_scale" in err
    with pytest.raises(RunError, match="incomplete run: .*shard 1/3"):
        read_run(out)
    rows, _s, meta = read_run(out, allow_incomplete=True)
    assert len(rows) == 15 - (len(lines) - 2) and meta["missing_rows"] == len(lines) - 2

    # shard 2 never ran: named, with its planned row count
    out2 = tmp_path / "merged2"
    assert main(["merge", str(shards[0]), str(shards[1]), "-o", str(out2), "--no-report"]) == 1
    n2 = len(_keyed(shards[2]))
    assert f"shard 2/3 missing (no run given: {n2} planned rows)" in capsys.readouterr().err
    assert "shard 2/3 missing" in read_metadata(out2)["incomplete"]


@pytest.mark.parametrize("key,value,needle", [
    ("gpu", "NVIDIA H200", "differ in gpu"),
    ("git_commit", "f" * 40, "differ in git_commit"),
    ("torch", "9.9.9", "differ in torch"),
    ("upstreams", {"fakeup": "0.0.1"}, "differ in upstream fakeup"),
])
def test_merge_refuses_runs_of_different_gpus_commits_or_versions(runs, tmp_path, capsys, key, value, needle):
    _whole, shards = runs
    other = _copy(shards[1], tmp_path / shards[1].name)
    meta = json.loads((other / "metadata.json").read_text())
    meta[key] = value
    (other / "metadata.json").write_text(json.dumps(meta))
    assert main(["merge", str(shards[0]), str(other), "-o", str(tmp_path / "m"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_merge_refuses_overlapping_shards_and_other_plans(runs, tmp_path, capsys):
    whole, shards = runs
    twice = _copy(shards[0], tmp_path / "again")
    assert main(["merge", str(shards[0]), str(twice), "-o", str(tmp_path / "m"), "--no-report"]) == 2
    assert "overlapping shards: shard 0/3" in capsys.readouterr().err
    assert main(["merge", str(shards[0]), str(whole), "-o", str(tmp_path / "m"), "--no-report"]) == 2
    assert "is not a shard" in capsys.readouterr().err
    other = _copy(shards[1], tmp_path / "other-plan")
    meta = json.loads((other / "metadata.json").read_text())
    meta["shard"]["plan_digest"] = "0" * 16
    (other / "metadata.json").write_text(json.dumps(meta))
    assert main(["merge", str(shards[0]), str(other), "-o", str(tmp_path / "m"), "--no-report"]) == 2
    assert "shards of different plans" in capsys.readouterr().err
    assert main(["merge", str(whole), str(whole), "-o", str(tmp_path / "m"), "--no-report"]) == 2
    assert "overlapping runs: row fake_scale" in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["--shard", "3/3"], "--shard 3/3: expected i/n with 0 <= i < n"),
    (["--shard", "x"], "--shard x: expected i/n"),
    (["--gpus", "0,1,0"], "--gpus 0,1,0: GPU 0 listed twice"),
])
def test_bad_shard_or_gpus_is_one_line(capsys, argv, needle):
    assert main(["bench", "--category", "moe", "--kernel", "fused_moe", "--model", "qwen3-235b-a22b", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
