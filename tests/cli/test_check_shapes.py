"""`harness check --shapes`: the correctness gate at the model shapes bench times, no timing, no availability.csv."""

from __future__ import annotations

import json

import pytest

from harness import cli, registry
from harness.results import read_run


def test_shapes_check_runs_the_model_shapes_without_timing(monkeypatch, tmp_path, capsys):
    """A Helion port gated at a model's shapes on the CPU (interpret mode): the rows carry the model, regime and
    shape a bench run would, status only; the run id says -check-shapes; availability.csv is left alone and the
    report on the folder renders with no speedup."""
    from harness import report

    monkeypatch.setenv("HELION_INTERPRET", "1")  # the worker processes inherit it
    avail = tmp_path / "availability.csv"
    avail.write_text("kernel,category,provider,status,reason\nplanted,x,y,pass,\n")
    before = avail.read_bytes()
    assert cli.main(["check", "--shapes", "--kernel", "silu_and_mul", "--impl", "helion", "--model", "gla-2.7b",
                     "--quick", "--tokens", "1,32", "--device", "cpu", "--out", str(tmp_path),
                     "--timeout", "60", "--first-timeout", "60"]) == 0
    out, err = capsys.readouterr()
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert run.name.endswith("-check-shapes")
    assert out.strip() == f"RUN_DIR={run}"
    assert "silu_and_mul helion: 2 rows: ok 2, incorrect 0, error 0, unavailable 0" in err
    assert avail.read_bytes() == before and not (tmp_path / "availability.md").exists()

    rows, samples, meta = read_run(run)
    assert sorted((r["model"], r["regime"], json.loads(r["shape"])["R"]) for r in rows) == [
        ("gla-2.7b", "decode", 1), ("gla-2.7b", "decode", 32)]
    assert all(json.loads(r["shape"])["N"] == 6912 for r in rows)  # the model's mlp.intermediate_size, not 1100
    for r in rows:
        assert r["status"] == "ok", r
        assert all(r[c] is None for c in ("median_us", "p20_us", "p80_us", "eager_us", "timing_method", "n_samples"))
    assert samples == {}
    assert meta["check_only"] is True and meta["check_shapes"] is True and meta["quick"] is True
    assert meta["selection"]["models"] == ["gla-2.7b"] and meta["selection"]["tokens"] == [1, 32]

    # a check run reads like any other: no timing, so no speedup, and no crash
    assert report.main([str(run)]) == 0
    md = (run / "speedup.md").read_text()
    assert "No shape has both a Helion row and an upstream row that are ok." in md
    assert "×" not in md.split("## Headline", 1)[1].split("## Environment", 1)[0]

    # the availability matrix is rebuilt from check_cases() runs only
    capsys.readouterr()
    assert cli.main(["check", "--from-run", str(run)]) == 2
    assert "a --shapes check" in capsys.readouterr().err
    assert avail.read_bytes() == before


@pytest.mark.parametrize("argv,needle", [
    (["--shapes", "--model", "gla-2.7b", "--tokens", "5"],
     "--tokens 5: not a token count of the selection; valid: 1, 8, 32, 128, 512, 2048, 8192, 16384"),
    (["--shapes", "--model", "gla-2.7b", "--tokens", "x"], "--tokens x: 'x' is not a positive integer"),
    (["--shapes", "--model", "nope"], "unknown model 'nope'; valid: "),
    (["--shapes", "--kernel", "fused_moe", "--model", "gla-2.7b"], "nothing to check: no model in the selection"),
    (["--tokens", "1"], "--tokens picks model shapes: add --shapes"),
    (["--quick"], "--quick picks model shapes: add --shapes"),
])
def test_bad_shape_selection_is_one_usage_line(capsys, argv, needle):
    # before any GPU check (default --device cuda): bad input is reported the same on every machine
    base = [] if "--kernel" in argv else ["--kernel", "silu_and_mul"]
    assert cli.main(["check", *base, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert "no CUDA GPU" not in err


def test_without_shapes_the_plan_is_the_check_cases(plan_only, tmp_path, capsys):
    assert cli.main(["check", "--kernel", "silu_and_mul,gla_recurrent", "--model", "gla-2.7b", "--device", "cpu",
                     "--out", str(tmp_path)]) == 0
    want = []
    for k in ("silu_and_mul", "gla_recurrent"):  # the --kernel order
        spec = registry.specs()[k]
        want += [(k, p, c.model, c.regime, c.params, d) for c in spec.check_cases() for d in spec.dtypes
                 for p in registry.providers(k)]
    got = [(r.kernel, r.impl, r.model, r.regime, r.params, r.dtype) for r in plan_only.plans]
    slow_last = sorted(want, key=lambda w: w[1] in ("fla", "gated-delta-net"))  # --jobs 1: autotuning ones last
    assert got == slow_last and all(r.model != "gla-2.7b" for r in plan_only.plans)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert run.name.endswith("-check") and not run.name.endswith("-check-shapes")
    assert "check_shapes" not in read_run(run)[2]
    assert (tmp_path / "availability.csv").exists()


def test_shapes_plan_is_the_bench_plan_slow_providers_first_with_jobs(plan_only, tmp_path):
    from harness.runner import plan_rows
    from harness.shapes import load_model

    assert cli.main(["check", "--shapes", "--kernel", "gla_recurrent", "--model", "gla-2.7b", "--quick", "--jobs",
                     "2", "--device", "cpu", "--out", str(tmp_path)]) == 0
    bench = plan_rows(["gla_recurrent"], [load_model("gla-2.7b")], None, None, quick=True)
    assert sorted(map(repr, plan_only.plans)) == sorted(map(repr, bench))
    impls = [r.impl for r in plan_only.plans]
    assert impls == sorted(impls, key=lambda i: i != "fla")  # --jobs > 1: the autotuning provider starts first
    assert not (tmp_path / "availability.csv").exists()


def test_only_checks_the_rows_of_a_todo_list(plan_only, tmp_path, capsys):
    """--only FILE (from `harness coverage --todo-out`): the --shapes plan narrowed to the listed rows; a list with
    none of the selection's rows, or without --shapes, is one usage line."""
    from harness.coverage import write_todo
    from harness.runner import plan_rows
    from harness.shapes import load_model

    bench = plan_rows(["gla_recurrent"], [load_model("gla-2.7b")], ["helion"], None, quick=False)
    keep = [bench[0], bench[-1]]
    todo = tmp_path / "todo.csv"
    write_todo(todo, [((r.kernel, r.model, json.dumps(r.params, sort_keys=True, separators=(",", ":")), r.dtype),
                       "missing") for r in keep] + [(("silu_and_mul", "nope", "{}", "bf16"), "missing")])
    assert cli.main(["check", "--shapes", "--kernel", "gla_recurrent", "--impl", "helion", "--only", str(todo),
                     "--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    assert list(map(repr, plan_only.plans)) == list(map(repr, keep))
    capsys.readouterr()
    assert cli.main(["check", "--shapes", "--kernel", "silu_and_mul", "--model", "gla-2.7b", "--only", str(todo),
                     "--device", "cpu", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "none of its 3 rows to gate is in the selection" in err and len(err.splitlines()) == 1
    assert cli.main(["check", "--kernel", "gla_recurrent", "--only", str(todo)]) == 2
    assert "--only picks model shapes: add --shapes" in capsys.readouterr().err


def test_only_gates_no_untimed_row_and_bench_only_runs_every_provider(plan_only, monkeypatch, tmp_path, capsys):
    """A todo list's `untimed` rows passed the gate already: `check --only` leaves them out, `bench --only` runs
    them, with every selected provider at each listed shape (Helion and the upstreams, to pair them)."""
    from harness.coverage import write_todo
    from harness.runner import plan_rows
    from harness.shapes import load_model

    helion = plan_rows(["gla_recurrent"], [load_model("gla-2.7b")], ["helion"], None, quick=False)
    key = [(r.kernel, r.model, json.dumps(r.params, sort_keys=True, separators=(",", ":")), r.dtype)
           for r in helion[:2]]
    todo = tmp_path / "todo.csv"
    write_todo(todo, [(key[0], "stale"), (key[1], "untimed")])
    assert cli.main(["check", "--shapes", "--kernel", "gla_recurrent", "--impl", "helion", "--only", str(todo),
                     "--device", "cpu", "--out", str(tmp_path / "c")]) == 0
    assert [(p.impl, p.params) for p in plan_only.plans] == [("helion", helion[0].params)]

    class Recorder(plan_only):
        def __init__(self, writer, opts):
            self.writer, self.versions = writer, {}

    monkeypatch.setattr("harness.runner.Runner", Recorder)
    assert cli.main(["bench", "--kernel", "gla_recurrent", "--only", str(todo), "--device", "cpu", "--no-report",
                     "--costs-from", "none", "--out", str(tmp_path / "b")]) == 0
    everyone = plan_rows(["gla_recurrent"], [load_model("gla-2.7b")], None, None, quick=False)
    want = [r for r in everyone if any((r.params, r.dtype) == (h.params, h.dtype) for h in helion[:2])]
    assert sorted(map(repr, Recorder.plans)) == sorted(map(repr, want))
    assert {p.impl for p in Recorder.plans} > {"helion"}  # the upstreams at those shapes too
    capsys.readouterr()
    assert cli.main(["bench", "--kernel", "silu_and_mul", "--model", "gla-2.7b", "--only", str(todo), "--device",
                     "cpu", "--out", str(tmp_path / "b")]) == 2
    assert "none of its 2 rows is in the selection" in capsys.readouterr().err


def test_fit_budget_takes_whole_shapes_round_robin_over_kernels():
    from harness.runner import RowPlan, fit_budget

    rows = [RowPlan(k, "c", impl, "m", "r", {"M": m}, "bf16") for k in ("a", "b") for m in (1, 2, 3)
            for impl in ("helion", "up")]
    cost = {"a": 1.0, "b": 2.0}
    got, taken, planned, expected = fit_budget(rows, lambda r: cost[r.kernel], 9.0)
    # a M=1 (2 s), b M=1 (4 s), a M=2 (2 s): 8 s; b M=2 would make 12: b drops out; a M=3 would make 10: a too
    assert [(r.kernel, r.params["M"], r.impl) for r in got] == [
        ("a", 1, "helion"), ("a", 1, "up"), ("a", 2, "helion"), ("a", 2, "up"), ("b", 1, "helion"), ("b", 1, "up")]
    assert (taken, planned, expected) == (3, 6, 8.0)
    assert fit_budget(rows, lambda r: cost[r.kernel], 1.0)[0] == []
    assert len(fit_budget(rows, lambda r: cost[r.kernel], 1e9)[0]) == len(rows)


def test_bench_max_s_runs_the_shapes_that_fit(plan_only, monkeypatch, tmp_path, capsys):
    from harness.results import read_metadata

    class Recorder(plan_only):
        def __init__(self, writer, opts):
            self.writer, self.versions = writer, {}

    monkeypatch.setattr("harness.runner.Runner", Recorder)
    base = ["bench", "--kernel", "gla_recurrent", "--model", "gla-2.7b", "--device", "cpu", "--no-report",
            "--costs-from", "none", "--out", str(tmp_path)]
    assert cli.main([*base, "--max-s", "10"]) == 0  # 1.65 s a row (no measured costs), fla + helion per shape
    assert len(Recorder.plans) == 6 and {p.impl for p in Recorder.plans} == {"fla", "helion"}
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert read_metadata(run)["budget"] == {"max_s": 10.0, "shapes": 3, "shapes_planned": 5, "expected_s": 9.9}
    capsys.readouterr()
    assert cli.main([*base, "--max-s", "1"]) == 2
    assert "not even one shape fits" in capsys.readouterr().err
    assert cli.main([*base, "--max-s", "100", "--shard", "0/2"]) == 2
    assert "not with --shard" in capsys.readouterr().err


def test_bench_dry_run_prints_the_plan_and_runs_nothing(monkeypatch, tmp_path, capsys):
    """`bench --dry-run`: rows, shapes and expected seconds per kernel after --max-s, with no GPU and nothing
    written; the same cut a real --max-s run takes."""
    def no_runner(*_a, **_k):
        raise AssertionError("a dry run must not start a runner")

    monkeypatch.setattr("harness.runner.Runner", no_runner)
    base = ["bench", "--dry-run", "--kernel", "gla_recurrent", "--model", "gla-2.7b", "--costs-from", "none",
            "--out", str(tmp_path)]
    assert cli.main(base) == 0  # default device cuda: no GPU here, and a dry run needs none
    out = capsys.readouterr().out
    assert "| gla_recurrent | 10 | 5 | 16 |" in out and "| all | 10 | 5 | 16 |" in out
    assert "expected 16 s of sweep" in out and "nothing was run" in out
    assert "1 of 1 kernels have no measured row cost and count 1.65 s/row (the default): gla_recurrent" in out
    assert cli.main([*base, "--max-s", "10", "--gpus", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "| all | 6 | 3 | 10 |" in out and "expected 5 s of sweep over 2 GPUs" in out
    assert list(tmp_path.iterdir()) == []
    assert cli.main([*base, "--gpu-slug", "h999"]) == 2
    assert "unknown GPU folder 'h999'" in capsys.readouterr().err
