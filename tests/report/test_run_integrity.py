"""No command loses data: truncated, corrupt or incomplete runs are refused with one line (exit 2) and nothing is
touched; a rebuild reproduces what the report was built with and never deletes a file; runs on other GPUs are
not compared; the committed runs re-render byte for byte and stay small."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from harness import compare, report, results
from tests.report.conftest import RunFactory
from tests.report.runs import METADATA, plain_results

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def _cut_mid_row(run: Path) -> None:
    csv = plain_results(run)
    data = csv.read_bytes()
    csv.write_bytes(data[: len(data) // 2])  # almost surely inside a row: no line end


def test_truncated_results_refused_by_report_and_compare(make_run: RunFactory,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_run("base", seed=1), make_run("new", seed=2)
    report.build_report(new)
    _cut_mid_row(new)
    before = _snapshot(new)
    assert report.main([str(new)]) == 2
    line = _one_error_line(capsys)
    assert "results.csv" in line and "line " in line and "cut mid-row" in line
    assert _snapshot(new) == before  # speedup.md, plots and report.html untouched
    assert compare.main([str(base), str(new)]) == 2  # not "70 GONE, 73 SAME -> PASS"
    assert "cut mid-row" in _one_error_line(capsys)


def test_truncated_at_a_row_boundary_is_incomplete(make_run: RunFactory,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_run("base", seed=1), make_run("new", seed=2)
    lines = plain_results(new).read_text().splitlines(keepends=True)
    (new / "results.csv").write_text("".join(lines[:5]))
    assert compare.main([str(base), str(new)]) == 2
    line = _one_error_line(capsys)
    assert "4 rows but the completion mark says" in line and "results.csv" in line


def test_corrupt_numeric_cell_names_file_line_and_column(make_run: RunFactory,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_run("base", seed=1), make_run("new", seed=2)
    csv = plain_results(new)
    lines = csv.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    col = header.index("median_us")
    cells = lines[3].rstrip("\n").split(",")
    # the shape JSON holds commas: find the median cell from the end of the row instead
    cells[col - len(header)] = "12.3x"
    lines[3] = ",".join(cells) + "\n"
    csv.write_text("".join(lines))
    before = _snapshot(new)
    assert report.main([str(new)]) == 2
    line = _one_error_line(capsys)
    assert "results.csv: line 4, column median_us: '12.3x' is not a number" in line
    assert _snapshot(new) == before
    assert compare.main([str(base), str(new)]) == 2
    assert "line 4, column median_us" in _one_error_line(capsys)


def test_incomplete_run_refused_unless_asked(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run("stopped", seed=1, finish=False)
    assert report.main([str(run)]) == 2
    assert "incomplete run" in _one_error_line(capsys)
    assert not (run / "speedup.md").exists()
    assert report.main([str(run), "--allow-incomplete", "--jobs", "1"]) == 0
    assert "INCOMPLETE RUN" in (run / "speedup.md").read_text()
    assert "INCOMPLETE RUN" in (run / "report.html").read_text()


def test_compare_refuses_runs_on_other_gpus(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    h200 = copy.deepcopy(METADATA)
    h200.update(gpu="NVIDIA H200", gpu_slug="h200")
    base, new = make_run("base", seed=1), make_run("new", seed=2, metadata=h200)
    assert compare.main([str(base), str(new)]) == 2
    line = _one_error_line(capsys)
    assert "NVIDIA H100 80GB HBM3" in line and "NVIDIA H200" in line and "--allow-env-mismatch" in line
    assert compare.main([str(base), str(new), "--allow-env-mismatch"]) == 0
    assert "WARNING" in capsys.readouterr().out
    assert report.main([str(new), "--against", str(base)]) == 2
    assert "--allow-env-mismatch" in _one_error_line(capsys)
    assert not (new / "speedup.md").exists()


def test_rebuild_reproduces_against_and_never_deletes(make_run: RunFactory) -> None:
    base, new = make_run("base", seed=1), make_run("new", seed=2)
    files = report.build_report(new, against=base, jobs=1)
    assert json.loads((new / "metadata.json").read_text())["report_against"] == "../base"
    built = _snapshot(new)
    stray = new / "plots" / "kept_by_hand__speedup.png"  # a committed file the report cannot regenerate
    stray.write_bytes(b"not ours")
    # what `make report` does: no --against; the recorded base is used and every file comes out identical
    assert report.main(["--all", "--results-dir", str(new.parents[1]), "--jobs", "1"]) == 0
    assert _snapshot(new) == {**built, "plots/kept_by_hand__speedup.png": _snapshot(new)[
        "plots/kept_by_hand__speedup.png"]}
    assert stray.read_bytes() == b"not ours"
    assert "## Regressions vs base" in files.markdown.read_text()
    # dropping the comparison is explicit, and still deletes nothing
    report.main([str(new), "--no-against", "--jobs", "1"])
    assert "Regressions" not in (new / "speedup.md").read_text()
    assert "report_against" not in json.loads((new / "metadata.json").read_text())
    assert all((new / p).exists() for p in built)


def test_missing_recorded_base_is_one_line_and_touches_nothing(make_run: RunFactory,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_run("base", seed=1), make_run("new", seed=2)
    report.build_report(new, against=base, jobs=1)
    shutil.rmtree(base)
    before = _snapshot(new)
    assert report.main([str(new)]) == 2
    line = _one_error_line(capsys)
    assert "../base" in line and "--no-against" in line
    assert _snapshot(new) == before


def test_report_is_byte_reproducible(make_run: RunFactory) -> None:
    run = make_run("r", seed=3)
    report.build_report(run, jobs=1)
    first = _snapshot(run)
    report.build_report(run, jobs=2)
    assert _snapshot(run) == first


#: the committed runs most at risk (a report built --against its baseline, that baseline, a partial legacy check
#: run); the whole of results/ takes minutes on a small CI box and is checked by `make report && git status`
LEAN_SAMPLE = ("20261125T201006Z-moe-4daae075", "20261125T214357Z-moe-20a9e50d-bf16", "20261125T204055Z-check")


def test_make_report_leaves_the_committed_runs_unchanged(tmp_path: Path) -> None:
    """`make report` (report --all) on a clean checkout: every committed file comes out byte-identical, nothing
    is removed, and what is added is only the plots git does not keep (.gitignore: /results/*/*/plots/), so
    `git status` stays clean (run on a copy, so a failure leaves the checkout alone)."""
    copy_dir = tmp_path / "results"
    for name in LEAN_SAMPLE:
        shutil.copytree(ROOT / "results" / "h100" / name, copy_dir / "h100" / name)
    before = _snapshot(copy_dir)
    assert report.main(["--all", "--results-dir", str(copy_dir)]) == 0
    after = _snapshot(copy_dir)
    added = sorted(set(after) - set(before))
    assert [k for k in added if not re.fullmatch(r"[^/]+/[^/]+/plots/[^/]+\.png", k)] == []
    assert sorted(set(before) - set(after)) == []
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [], changed[:10]


def test_committed_runs_are_lean() -> None:
    for run in results.list_runs(ROOT / "results"):
        size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
        assert size <= 3 * 2**20, f"{run.name}: {size / 2**20:.1f} MiB"
        page = run / "report.html"
        if page.exists():
            assert page.stat().st_size <= 1.5 * 2**20 and "base64" not in page.read_text()
        assert not (run / "samples.jsonl").exists() or (run / "samples.jsonl").stat().st_size == 0
        results.read_run(run, allow_incomplete=True)  # every committed run parses


def test_load_gives_one_typed_frame_over_runs(make_run: RunFactory, tmp_path: Path) -> None:
    make_run("20261124T000000Z-a", seed=1)
    make_run("20261125T000000Z-b", seed=2)
    df = results.load(str(tmp_path / "results" / "h100" / "*"))
    assert set(df["run"]) == {"20261124T000000Z-a", "20261125T000000Z-b"}
    assert set(df["gpu"]) == {"NVIDIA H100 80GB HBM3"} and set(df["gpu_slug"]) == {"h100"}
    assert str(df["median_us"].dtype) == "float64" and str(df["n_samples"].dtype) == "Int64"
    assert str(df["M"].dtype) == "Int64" and str(df["kernel"].dtype) == "string"
    assert df["tokens"].equals(df["M"].rename("tokens"))  # the legacy guess: these fixtures record no token_dims
    ok = df[df["status"] == "ok"]
    assert len(ok.groupby(["kernel", "impl"])["median_us"].median()) == 6
    with pytest.raises(results.RunError, match="no run folder"):
        results.load(str(tmp_path / "nothing-*"))


def test_report_all_rebuilds_a_stopped_run_under_its_banner_and_refuses_a_corrupt_one(
        make_run: RunFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A committed run that a time limit stopped is history: `make report` rebuilds it marked INCOMPLETE and
    passes; a run cut mid-row is still refused (exit 2) and left as it was."""
    stopped = make_run("stopped", seed=1, finish=False)
    root = stopped.parent
    assert report.main(["--all", "--results-dir", str(root.parent), "--jobs", "1"]) == 0
    assert "INCOMPLETE RUN" in (stopped / "speedup.md").read_text()
    corrupt = make_run("corrupt", seed=2)
    _cut_mid_row(corrupt)
    before = _snapshot(corrupt)
    assert report.main(["--all", "--results-dir", str(root.parent), "--jobs", "1"]) == 2
    assert "cut mid-row" in capsys.readouterr().err
    assert _snapshot(corrupt) == before
