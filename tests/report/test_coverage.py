"""`harness coverage`: planned Helion rows against the runs of one GPU. The newest run's status counts (a newer ok
supersedes an older incorrect, a newer error an older ok), speedups pair Helion with the best upstream of the same
run timed the same way, check_cases() rows never match, unreadable folders are skipped with one line, bad input
exits 2."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness import coverage
from harness.cli import main
from harness.results import RESULTS_DIR
from harness.runner import RowPlan
from tests.report.runs import METADATA, write_run

CATALOG = re.compile(r"^\d+ specs with a Helion port; \d+ gated at every planned model shape on \S+ \(\d+ of them "
                     r"with every row on the current port\); \d+ gated at some; \d+ with a failing newest row; "
                     r"\d+ of \d+ specs with an upstream comparison faster than the best upstream "
                     r"\(geomean > 1\.0\)$", re.M)

#: k1 (cat1) at M=1,2,4; k2 (cat2) at M=1,2; k3 (cat2) at M=1, never run
PLAN = [("k1", "cat1", m) for m in (1, 2, 4)] + [("k2", "cat2", m) for m in (1, 2)] + [("k3", "cat2", 1)]


def _row(kernel: str, impl: str, m: int, mean_us: float = 10.0, status: str = "ok", model: str = "llama",
         method: str = "cuda_graph") -> dict[str, Any]:
    return {"kernel": kernel, "category": dict((k, c) for k, c, _m in PLAN)[kernel], "impl": impl, "model": model,
            "regime": "decode", "shape": {"M": m, "N": 64}, "dtype": "bf16", "status": status, "mean_us": mean_us,
            "timing_method": method}


def _meta(date: str, slug: str = "h200", **extra: Any) -> dict[str, Any]:
    meta = copy.deepcopy(METADATA)
    meta.update(date=date, gpu=f"NVIDIA {slug.upper()}", gpu_slug=slug, **extra)
    return meta


def _write(root: Path, name: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    return write_run(root / name, rows, seed=0, metadata=meta, spread=0.0)  # no spread: exact speedups


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """results/h200 with four runs (A, B, C, D by date) and the plan patched to PLAN."""
    monkeypatch.setattr(coverage, "planned", lambda quick: [
        RowPlan(k, c, "helion", "llama", "decode", {"M": m, "N": 64}, "bf16") for k, c, m in PLAN])
    monkeypatch.setattr(coverage, "ported_specs", lambda: {k: c for k, c, _m in PLAN})
    h200 = tmp_path / "results" / "h200"
    # A, a bench run: k1 M=1 vs vLLM 20 and SGLang 25 (2.0x), M=2 incorrect, M=4 vs vLLM 8 (0.8x); k2 M=1: the
    # fastest upstream is event-timed (no pair), k2 M=2 vs vLLM 30
    _write(h200, "20261201T000000Z-all-aaaaaaaa", [
        _row("k1", "helion", 1), _row("k1", "vllm", 1, 20.0), _row("k1", "sglang", 1, 25.0),
        _row("k1", "helion", 2, status="incorrect"), _row("k1", "vllm", 2, 20.0),
        _row("k1", "helion", 4), _row("k1", "vllm", 4, 8.0),
        _row("k2", "helion", 1), _row("k2", "vllm", 1, 5.0, method="events"),
        _row("k2", "helion", 2), _row("k2", "vllm", 2, 30.0),
    ], _meta("2026-12-01T00:00:00+00:00"))
    # B, a check --shapes run: k1 M=2 now passes (no upstream here: gated, not timed), k2 M=2 now errors, and a
    # k1 shape the plan does not have
    _write(h200, "20261202T000000Z-check-shapes", [
        _row("k1", "helion", 2), _row("k2", "helion", 2, status="error"), _row("k1", "helion", 8),
    ], _meta("2026-12-02T00:00:00+00:00", check_only=True, check_shapes=True))
    # C: an upstream row alone (the Helion row of that shape is in B: never paired across runs)
    _write(h200, "20261203T000000Z-all-cccccccc", [_row("k1", "vllm", 2, 40.0)], _meta("2026-12-03T00:00:00+00:00"))
    # D, a check_cases() run: its rows are no model shapes
    _write(h200, "20261204T000000Z-check", [_row("k1", "helion", 1, status="incorrect", model="check")],
           _meta("2026-12-04T00:00:00+00:00", check_only=True))
    return tmp_path / "results"


def _table(text: str, first: str) -> dict[str, list[str]]:
    """The markdown table whose header starts with `first`, keyed by each row's first cell."""
    lines = text.split(f"| {first} |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines)}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["coverage", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_counts_precedence_and_same_run_pairing(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "--results-dir", str(tree), "--per-spec")
    assert rc == 0, err
    cats = _table(out, "category")
    #             specs planned gated  %       stale failing timed stale geomean (sqrt(2.0 * 0.8))
    assert cats["cat1"] == ["1", "3", "3", "100.0 %", "0", "0", "2", "0", "1.26×"]
    assert cats["cat2"] == ["2", "3", "1", "33.3 %", "0", "1", "0", "0", "—"]
    assert cats["all"] == ["3", "6", "4", "66.7 %", "0", "1", "2", "0", "1.26×"]
    specs = _table(out, "spec")
    assert specs["k1"] == ["cat1", "3", "3", "100.0 %", "0", "0", "2", "0", "1.26×"]  # M=2: incorrect in A, ok in B
    assert specs["k2"] == ["cat2", "2", "1", "50.0 %", "0", "1", "0", "0", "—"]  # M=2: ok in A, error in B; M=1: events
    assert specs["k3"] == ["cat2", "1", "0", "0.0 %", "0", "0", "0", "0", "—"]
    assert "Not counted: 1 Helion rows" in out  # B's M=8; D's check_cases() row is not counted as stale
    assert CATALOG.search(out)
    assert out.rstrip().splitlines()[-1] == (
        "3 specs with a Helion port; 1 gated at every planned model shape on H200 (1 of them with every row on the "
        "current port); 1 gated at some; 1 with a failing newest row; 1 of 1 specs with an upstream comparison faster "
        "than the best upstream (geomean > 1.0)")


def test_rows_gated_on_an_older_port_are_counted(tree: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """k1's port changed after run A's commit (B's is current): A's two gated k1 rows are stale, B's is not."""
    for run in (tree / "h200").iterdir():
        meta = json.loads((run / "metadata.json").read_text())
        meta["git_commit"] = run.name[-8:]
        (run / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr(coverage, "port_changed_since",
                        lambda kernel, commit: kernel == "k1" and commit == "aaaaaaaa")
    rc, out, err = _run(capsys, "--results-dir", str(tree), "--per-spec")
    assert rc == 0, err
    assert _table(out, "spec")["k1"][1:5] == ["3", "3", "100.0 %", "2"]
    assert _table(out, "spec")["k1"][6:8] == ["2", "2"]  # both timings ran in A, on the older port
    assert "1 gated at every planned model shape on H200 (0 of them with every row on the current port)" in out


def test_port_history_from_git() -> None:
    """This checkout's own history: fused_moe's port changed after the first commit that touched it."""
    first = coverage._git("log", "--reverse", "--format=%H", "--", "ports/moe/fused_moe.py")
    if first is None or first.returncode != 0 or not first.stdout.strip():
        pytest.skip("no git history here")
    oldest = first.stdout.split()[0]
    assert coverage.port_changed_since("fused_moe", oldest) is (len(first.stdout.split()) > 1)
    assert coverage.port_changed_since("fused_moe", None) is False
    assert coverage.port_changed_since("fused_moe", "0" * 40) is False  # unknown commit: not called stale


def test_newest_by_metadata_date_not_folder_name(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder whose name sorts last but whose recorded start is oldest does not override newer runs."""
    _write(tree / "h200", "20261209T000000Z-all-zzzzzzzz", [_row("k2", "helion", 2)],
           _meta("2026-11-01T00:00:00+00:00"))
    rc, out, _err = _run(capsys, "--results-dir", str(tree), "--per-spec")
    assert rc == 0
    assert _table(out, "spec")["k2"][3:6] == ["50.0 %", "0", "1"]  # B's error (2026-12-02) still the newest


def test_runs_restricts_the_runs(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = tree / "h200" / "20261201T000000Z-all-aaaaaaaa"
    rc, out, _err = _run(capsys, "--results-dir", str(tree), "--per-spec", "--runs", str(a))
    assert rc == 0
    specs = _table(out, "spec")
    assert specs["k1"] == ["cat1", "3", "2", "66.7 %", "0", "1", "2", "0", "1.26×"]  # without B, M=2 stays incorrect
    assert specs["k2"] == ["cat2", "2", "2", "100.0 %", "0", "0", "1", "0", "3.00×"]
    # a run id under results/<gpu> works as well as a path
    rc, out2, _err = _run(capsys, "--results-dir", str(tree), "--gpu", "h200", "--runs", a.name)
    assert rc == 0 and _table(out2, "category") == _table(out, "category")


def test_default_gpu_is_the_newest_and_bad_folders_are_skipped(tree: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _write(tree / "h100", "20261130T000000Z-all-11111111", [_row("k3", "helion", 1)],
           _meta("2026-11-30T00:00:00+00:00", slug="h100"))
    broken = tree / "h200" / "20261205T000000Z-all-broken"
    broken.mkdir()
    (broken / "results.csv").write_text("not,the,header\n")
    rc, out, err = _run(capsys, "--results-dir", str(tree))
    assert rc == 0
    assert "on H200" in out  # h200 has the newer runs
    assert err.count("\n") == 1 and err.startswith(f"warning: {broken}: skipped")
    rc, out, _err = _run(capsys, "--results-dir", str(tree), "--gpu", "h100")
    assert rc == 0
    assert _table(out, "category")["cat2"][:3] == ["2", "3", "1"]  # k3's one row gated on the H100


@pytest.mark.parametrize("argv,needle", [
    (["--gpu", "nope"], "unknown GPU folder 'nope'"),
    (["--runs", "20991231T000000Z-all-missing"], "--runs 20991231T000000Z-all-missing: no run folder"),
    (["--gpu", "h200", "--runs", "/nonexistent/run"], "--runs /nonexistent/run: no run folder"),
])
def test_bad_input_is_one_line_exit_2(tree: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                      needle: str) -> None:
    rc, out, err = _run(capsys, "--results-dir", str(tree), *argv)
    assert rc == 2 and not out
    assert needle in err and len(err.strip().splitlines()) == 1


def test_no_results_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = _run(capsys, "--results-dir", str(tmp_path / "results"))
    assert rc == 2 and "no GPU folder with runs" in err


@pytest.mark.skipif(not (RESULTS_DIR / "h200").is_dir(), reason="no committed H200 runs in this checkout")
def test_committed_h200_runs(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "--gpu", "h200")
    assert rc == 0, err
    assert CATALOG.search(out) and "on H200" in out


def test_todo_out_lists_the_rows_still_to_gate(tree: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """--todo-out: every planned row not gated on the current port, with why (missing, failing, stale), in plan
    order; a row whose newest status is unavailable is left out; the file is what `check --only` reads."""
    import csv

    _write(tree / "h200", "20261205T000000Z-check-shapes", [_row("k3", "helion", 1, status="unavailable")],
           _meta("2026-12-05T00:00:00+00:00", check_only=True, check_shapes=True))
    monkeypatch.setattr(coverage, "port_changed_since", lambda kernel, commit: kernel == "k1" and commit == "aaaa")
    a = tree / "h200" / "20261201T000000Z-all-aaaaaaaa"
    meta = json.loads((a / "metadata.json").read_text())
    (a / "metadata.json").write_text(json.dumps({**meta, "git_commit": "aaaa"}))
    out_file = tree.parent / "todo" / "todo.csv"
    rc, out, err = _run(capsys, "--results-dir", str(tree), "--todo-out", str(out_file))
    assert rc == 0, err
    with out_file.open() as f:
        got = [(r["kernel"], json.loads(r["shape"])["M"], r["reason"]) for r in csv.DictReader(f)]
    # k1 M=1, M=4: ok in A on an older port; M=2: ok in B (current) but never paired with an upstream; k2 M=1: ok,
    # its upstream event-timed (no pair); k2 M=2: error in B; k3: unavailable
    assert got == [("k1", 1, "stale"), ("k1", 2, "untimed"), ("k1", 4, "stale"), ("k2", 1, "untimed"),
                   ("k2", 2, "failing")]
    assert ("Todo: 5 planned rows not yet gated and timed on the current port (0 missing, 1 failing, 2 stale, "
            "2 untimed)") in out
    assert "Gate the 3 missing, failing and stale ones" in out
    k = {m: ("k1", "llama", f'{{"M":{m},"N":64}}', "bf16") for m in (1, 2, 4)}
    k2 = ("k2", "llama", '{"M":2,"N":64}', "bf16")
    assert coverage.read_todo(out_file, coverage.GATE_REASONS) == {k[1], k[4], k2}  # what check --only gates
    assert len(coverage.read_todo(out_file)) == 5  # what bench --only runs


def test_a_timing_on_an_older_port_leaves_the_row_untimed(tree: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """k1 M=1 and M=4 were timed in A; a check run on the current port re-gates them (not stale any more), but
    their only timing is still A's, on the older port: they are `untimed` until a bench times them again."""
    import csv

    _write(tree / "h200", "20261206T000000Z-check-shapes", [_row("k1", "helion", 1), _row("k1", "helion", 4)],
           _meta("2026-12-06T00:00:00+00:00", check_only=True, check_shapes=True, git_commit="bbbb"))
    a = tree / "h200" / "20261201T000000Z-all-aaaaaaaa"
    meta = json.loads((a / "metadata.json").read_text())
    (a / "metadata.json").write_text(json.dumps({**meta, "git_commit": "aaaa"}))
    monkeypatch.setattr(coverage, "port_changed_since",
                        lambda kernel, commit, gpu=None: kernel == "k1" and commit == "aaaa")
    out_file = tree.parent / "todo.csv"
    rc, _out, err = _run(capsys, "--results-dir", str(tree), "--todo-out", str(out_file))
    assert rc == 0, err
    with out_file.open() as f:
        got = {(r["kernel"], json.loads(r["shape"])["M"]): r["reason"] for r in csv.DictReader(f)}
    assert got[("k1", 1)] == "untimed" and got[("k1", 4)] == "untimed"


def test_read_todo_bad_file_is_a_usage_error(tmp_path: Path) -> None:
    from harness.cli import UsageError

    with pytest.raises(UsageError, match="no such file|No such file"):
        coverage.read_todo(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="not a todo list"):
        coverage.read_todo(tmp_path / "other.csv")


def test_a_row_that_did_not_run_the_shipped_config_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config_changed: a row is stale when this checkout ships an entry for its bucket that it did not run (added,
    or re-tuned since), or when it ran an entry since removed; rows without a config source count as current."""
    from ports import _configs

    monkeypatch.setattr(_configs, "CONFIG_DIR", tmp_path / "configs")
    key = ("add_rms_norm", "mamba2-2.7b", '{"H":2560,"T":512,"eps":1e-05}', "bf16")
    bucket = "dtype=bf16,H=2560,eps=1e-05,T<=512"
    default_row = {"config_source": "default (no tuned entry)", "config": '{"add_rms_norm_kernel": {"num_warps": 4}}'}
    assert coverage.config_changed(key, default_row, "h200") is False  # no file: the default is what ships
    assert coverage.config_changed(key, {"config_source": ""}, "h200") is False  # an old run: unknown, current
    impl_dims = {"T": 512, "H": 2560, "eps": 1e-05}
    got = _configs.save("add_rms_norm", "h200", impl_dims, "bf16", {"add_rms_norm_kernel": {"num_warps": 8}},
                        provenance={"date": "2026-12-03"}, bucket_dim="T")
    assert got == bucket
    assert coverage.config_changed(key, default_row, "h200") is True  # an entry added since the run
    ran = {"config_source": f"ports/configs/h200/add_rms_norm.json[{bucket}]",
           "config": '{"add_rms_norm_kernel": {"block_sizes": [1], "num_warps": 8}}'}
    assert coverage.config_changed(key, ran, "h200") is False
    # the same bucket written with its dims in another order (the run's dict order): the entry it ran
    reordered = {**ran, "config_source": "ports/configs/h200/add_rms_norm.json[dtype=bf16,eps=1e-05,H=2560,T<=512]"}
    assert coverage.config_changed(key, reordered, "h200") is False
    suffixed = {**ran, "config_source": ran["config_source"] + " (+default other_kernel)"}
    assert coverage.config_changed(key, suffixed, "h200") is False
    assert coverage.config_changed(key, {**ran, "config_source": ran["config_source"].replace("T<=512", "T<=256")},
                                   "h200") is True
    assert coverage.config_changed(key, ran, "h100") is True  # that GPU ships nothing: the default runs there
    _configs.save("add_rms_norm", "h200", impl_dims, "bf16", {"add_rms_norm_kernel": {"num_warps": 16}},
                  provenance={"date": "2026-12-04"}, bucket_dim="T")
    assert coverage.config_changed(key, ran, "h200") is True  # re-tuned since
