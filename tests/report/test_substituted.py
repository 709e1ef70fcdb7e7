"""The report's "steps substituted in upstream rows" section: numbers from the rows' `substituted steps alone: <x>
us` notes, only at shapes with a like-with-like pair, nothing for runs without the note, malformed notes ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import report
from harness.results import RunWriter
from tests.report.runs import METADATA

NOTE = "silu_and_mul: SiluAndMul.forward_native (CUDA op _C.silu_and_mul not loadable); substituted steps alone: {} us"


def _row(impl: str, m: int, median: float | None = None, status: str = "ok", notes: str | None = None,
         method: str = "cuda_graph") -> dict[str, Any]:
    row: dict[str, Any] = {"kernel": "fused_moe", "category": "moe", "impl": impl, "model": "llama",
                           "regime": "decode" if m <= 64 else "prefill", "shape": {"M": m, "N": 4096},
                           "dtype": "bf16", "status": status, "notes": notes,
                           "error": None if status == "ok" else f"{status}: planted by the test"}
    if median is not None and status == "ok":
        row.update(median_us=median, p20_us=median * 0.98, p80_us=median * 1.02, n_samples=3,
                   eager_us=median + 7, gbps=100.0, tflops=1.0, timing_method=method)
    return row


def _write(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    w = RunWriter(run_dir, dict(METADATA))
    for r in rows:
        med = r.get("median_us")
        w.add(r, [med * 0.99, med, med * 1.01] if med else None)
    return run_dir


def _noted_run(run_dir: Path) -> Path:
    """M=1: Helion 50, vLLM 100 of which 20 substituted (share 20 %, measured 2.00x, bound 80/50 = 1.60x);
    M=8: Helion 80, vLLM 100 with 30 substituted (1.25x, bound 0.875x: the lead would not survive);
    M=16: the vLLM row is not ok (note or not: no bound); M=32: malformed note (ignored);
    M=64: the vLLM row is timed with events, Helion with a CUDA graph (no pair: no bound)."""
    return _write(run_dir, [
        _row("helion", 1, 50.0), _row("vllm", 1, 100.0, notes=NOTE.format("20.0")),
        _row("helion", 8, 80.0), _row("vllm", 8, 100.0, notes=NOTE.format("30.0") + "; vllm current_platform {}"),
        _row("helion", 16, 50.0), _row("vllm", 16, status="error", notes=NOTE.format("5.0")),
        _row("helion", 32, 50.0), _row("vllm", 32, 100.0, notes="substituted steps alone: n/a us"),
        _row("helion", 64, 50.0), _row("vllm", 64, 100.0, notes=NOTE.format("10.0"), method="events"),
        _row("sglang", 1, 90.0), _row("sglang", 8, 90.0),
    ])


def _table(text: str, heading: str) -> dict[str, dict[str, str]]:
    """The first markdown table after `heading`, keyed by its first cell."""
    after = text.split(heading + "\n", 1)[1]
    lines = [ln for ln in after.split("\n\n|", 1)[1].split("\n\n", 1)[0].splitlines()]
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in ["|" + lines[0], *lines[1:]]]
    return {r[0]: dict(zip(rows[0], r)) for r in rows[2:]}


def test_substituted_us_parses_only_well_formed_notes() -> None:
    assert report.substituted_us({"notes": NOTE.format("19.0")}) == 19.0
    assert report.substituted_us({"notes": "substituted steps alone: 7 us; other"}) == 7.0
    for bad in ("substituted steps alone: n/a us", "substituted steps alone: 19.0", "substituted steps alone: -3 us",
                "substituted steps alone: 1.2.3 us", "not substituted steps alone: 4 us", "", None):
        assert report.substituted_us({"notes": bad}) is None, bad
    assert report.substituted_us(None) is None


def test_table_numbers_and_headline_line(tmp_path: Path) -> None:
    files = report.build_report(_noted_run(tmp_path / "run"), jobs=1)
    md = files.markdown.read_text()
    table = _table(md, f"#### {report.SUBSTITUTED_TITLE}")
    bound_col = "Helion vs provider if the substituted steps were free (bound)"
    assert set(table) == {"M=1", "M=8"}  # not ok, malformed, timed differently: no row, no bound
    assert table["M=1"]["provider"] == "vllm"
    assert table["M=1"]["row median µs"] == "100.0" and table["M=1"]["substituted steps alone µs"] == "20.0"
    assert table["M=1"]["share of the row"] == "20.0 %"
    assert table["M=1"]["Helion vs provider (measured)"] == "2.00×"
    assert table["M=1"][bound_col] == "1.60×"
    assert table["M=8"]["share of the row"] == "30.0 %"
    assert table["M=8"]["Helion vs provider (measured)"] == "1.25×"
    assert table["M=8"][bound_col] == "**0.88×**"  # 70 / 80, below 1.0: bold like the main table
    # the vLLM rows at M=16 (error) and M=64 (events vs cuda_graph) carry the note but have no pair
    assert "2 upstream rows with the note left out" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("- fused_moe vs vllm:"))
    assert "2 shapes" in line and "median 25.0 % (max 30.0 %)" in line
    assert "leads at 2 of them and would fall below 1.0× at 1 of those" in line
    assert "sglang" not in line and not any(ln.startswith("- fused_moe vs sglang") for ln in md.splitlines())

    page = files.html.read_text()
    assert f"<h4>{report.SUBSTITUTED_TITLE}</h4>" in page
    assert '<td class="num good">1.60×</td>' in page and '<td class="num bad">0.88×</td>' in page
    assert "<li>fused_moe vs vllm: 2 shapes;" in page


def test_no_notes_no_section(tmp_path: Path) -> None:
    run = _write(tmp_path / "run", [_row("helion", 1, 50.0), _row("vllm", 1, 100.0, notes="plain note"),
                                    _row("helion", 8, 50.0), _row("vllm", 8, 100.0)])
    files = report.build_report(run, jobs=1)
    for text in (files.markdown.read_text(), files.html.read_text()):
        assert report.SUBSTITUTED_TITLE not in text
        assert "substituted" not in text


def test_noted_rows_without_a_pair_make_no_section(tmp_path: Path) -> None:
    # Helion not ok at one shape, timed differently at the other: nothing to bound, so no section at all
    run = _write(tmp_path / "run", [
        _row("helion", 1, status="incorrect"), _row("vllm", 1, 100.0, notes=NOTE.format("20.0")),
        _row("helion", 8, 50.0, method="events"), _row("vllm", 8, 100.0, notes=NOTE.format("20.0"))])
    files = report.build_report(run, jobs=1)
    for text in (files.markdown.read_text(), files.html.read_text()):
        assert report.SUBSTITUTED_TITLE not in text


def test_steps_alone_longer_than_the_row_get_no_bound(tmp_path: Path) -> None:
    run = _write(tmp_path / "run", [_row("helion", 1, 50.0), _row("vllm", 1, 100.0, notes=NOTE.format("120.0"))])
    md = report.build_report(run, jobs=1).markdown.read_text()
    (row,) = _table(md, f"#### {report.SUBSTITUTED_TITLE}").values()
    assert row["share of the row"] == "120.0 %"
    assert row["Helion vs provider if the substituted steps were free (bound)"] == "— (steps alone ≥ row)"
    line = next(ln for ln in md.splitlines() if ln.startswith("- fused_moe vs vllm:"))
    assert "would fall below 1.0× at 0 of those" in line
