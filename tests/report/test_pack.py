"""Run folders keep their results table gzipped (results.csv.gz): a finished sweep writes it, `harness pack`
compresses older runs, and every reader takes either form; no step loses a row."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from harness import report, results
from harness.cli import main
from tests.report.conftest import RunFactory
from tests.report.runs import plain_results, standard_rows, write_run


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_a_finished_run_writes_the_table_gzipped(make_run: RunFactory) -> None:
    run = make_run("base", seed=1)
    assert (run / "results.csv.gz").exists() and not (run / "results.csv").exists()
    rows, samples, _meta = results.read_run(run)
    assert len(rows) == len(standard_rows()) and samples
    assert len(pd.read_csv(run / "results.csv.gz")) == len(rows)  # pandas reads it as it is
    assert results.list_runs(run.parent) == [run]


def test_pack_compresses_a_plain_run_losslessly(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run("old", seed=2)
    before = results.read_run(run)
    plain = plain_results(run)  # as runs written before the compressed form
    text = plain.read_bytes()
    assert main(["pack", str(run)]) == 0
    assert "wrote results.csv.gz" in capsys.readouterr().out
    assert not plain.exists() and gzip.decompress((run / "results.csv.gz").read_bytes()) == text
    assert results.read_run(run) == before
    assert main(["pack", str(run)]) == 0  # packing again changes nothing
    assert capsys.readouterr().out == ""


def test_pack_all_runs_under_a_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [write_run(tmp_path / "h100" / name, standard_rows(), seed) for seed, name in enumerate(("a", "b"))]
    plain_results(runs[0])
    assert main(["pack", "--results-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("wrote results.csv.gz") == 1
    assert all((r / "results.csv.gz").exists() and not (r / "results.csv").exists() for r in runs)


def test_pack_refuses_a_run_without_its_completion_mark(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "h100" / "stopped", standard_rows(), 3, finish=False)
    before = _files(run)
    assert main(["pack", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no completion mark" in err[0] and "--allow-incomplete" in err[0]
    assert _files(run) == before  # nothing touched
    rows = results.read_rows(run, allow_incomplete=True)
    assert main(["pack", "--allow-incomplete", str(run)]) == 0
    assert results.read_rows(run, allow_incomplete=True) == rows
    assert {"results.csv.gz", "samples.jsonl.gz"} <= set(_files(run)) and "results.csv" not in _files(run)


def test_pack_leaves_a_run_with_both_forms_alone(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run("both", seed=4)
    (run / "results.csv").write_bytes(gzip.decompress((run / "results.csv.gz").read_bytes()))
    before = _files(run)
    assert main(["pack", str(run)]) == 2
    assert "both results.csv and results.csv.gz exist" in capsys.readouterr().err
    assert _files(run) == before


def test_a_corrupt_gzipped_table_names_the_file(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run("bad", seed=5)
    data = (run / "results.csv.gz").read_bytes()
    (run / "results.csv.gz").write_bytes(data[: len(data) // 2])
    assert report.main([str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.csv.gz: not a readable gzip file" in err[0]
