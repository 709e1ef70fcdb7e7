"""`harness report`: speedup.md numbers on a hand-computable run, non-ok rows, PNGs, a self-contained page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from harness import report
from harness.results import RunWriter
from tests.report.conftest import RunFactory
from tests.report.runs import METADATA, standard_rows, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(kernel: str, impl: str, model: str, m: int, median: float | None = None, status: str = "ok",
         error: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"kernel": kernel, "category": "moe", "impl": impl, "model": model,
                           "regime": "decode" if m <= 64 else "prefill", "shape": {"M": m, "N": 4096},
                           "dtype": "bf16", "status": status, "error": error}
    if median is not None:
        row.update(median_us=median, p20_us=median * 0.98, p80_us=median * 1.02, n_samples=3, eager_us=median + 7,
                   gbps=1500.0 * 50 / median, tflops=100.0 * 50 / median, timing_method="cuda_graph")
    return row


def hand_run(run_dir: Path) -> Path:
    """llama: Helion 50 vs vLLM 100 (2x) and 25 vs 200 (8x): geomean 4.00x over 2 shapes; qwen: 2.00x."""
    w = RunWriter(run_dir, dict(METADATA))
    rows = [
        _row("fused_moe", "helion", "llama", 1, 50.0), _row("fused_moe", "vllm", "llama", 1, 100.0),
        _row("fused_moe", "helion", "llama", 64, 25.0), _row("fused_moe", "vllm", "llama", 64, 200.0),
        # not ok on one side: left out of the geomean, shown by status; the stray median must never show
        _row("fused_moe", "helion", "llama", 512, 40.0),
        dict(_row("fused_moe", "vllm", "llama", 512, status="error", error="RuntimeError: planted OOM"),
             median_us=123.456),
        _row("fused_moe", "helion", "llama", 4096, status="incorrect", error="rel_err 0.5 > tol 0.02"),
        _row("fused_moe", "vllm", "llama", 4096, 300.0),
        _row("fused_moe", "helion", "qwen", 1, 50.0), _row("fused_moe", "vllm", "qwen", 1, 100.0),
        _row("fused_moe", "sglang", "qwen", 1, status="unavailable", error="unavailable: sglang not importable"),
    ]
    for r in rows:
        med = r.get("median_us")
        w.add(r, [med * 0.99, med, med * 1.01] if med and r["status"] == "ok" else None)
    return run_dir


def _md_row(md: str, first_cell: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def _md_section_table(md: str, heading: str) -> dict[tuple[str, str], dict[str, str]]:
    """The first table after `heading`, keyed by its first two cells."""
    lines = md.split(heading + "\n", 1)[1].split("\n## ", 1)[0].splitlines()
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if ln.startswith("|")]
    header, body = rows[0], rows[2:]
    return {(r[0], r[1]): dict(zip(header, r)) for r in body}


def _assert_self_contained(page: str, page_dir: Path) -> None:
    """No external URL and no script; every image is a PNG file next to the page (never base64: size)."""
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I), "external URL"
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert srcs and "base64" not in page
    for s in srcs:
        assert s.startswith("plots/") and (page_dir / s).read_bytes()[:8] == PNG_MAGIC


def test_speedup_md_numbers_and_statuses(tmp_path: Path) -> None:
    run = hand_run(tmp_path / "run")
    files = report.build_report(run)
    md = files.markdown.read_text()

    head = _md_section_table(md, "## Headline")
    assert head[("moe", "llama")]["Helion vs vllm"] == "4.00× (n=2)"
    assert head[("moe", "qwen")]["Helion vs vllm"] == "2.00× (n=1)"
    assert head[("moe", "qwen")]["Helion vs sglang"] == "—"  # unavailable: no number

    # the per-shape table: speedups, and statuses (never numbers) for rows that are not ok
    # (the last column is vs the best upstream: here vLLM, the only ok one)
    assert _md_row(md, "M=1")[-2:] == ["2.00×", "2.00× (vllm)"]
    assert _md_row(md, "M=64")[-2:] == ["8.00×", "8.00× (vllm)"]
    m512 = _md_row(md, "M=512")
    assert "error: RuntimeError: planted OOM" in m512 and m512[-2:] == ["—", "—"]
    m4096 = _md_row(md, "M=4096")
    assert "incorrect: rel_err 0.5 > tol 0.02" in m4096 and m4096[-2:] == ["—", "—"]
    helion_cell = m4096[3]
    assert not re.search(r"\d+\.\d", helion_cell.replace("0.5", "").replace("0.02", ""))
    assert "123.4" not in md and "123.5" not in md
    assert "50.0 (49.0–51.0)" in md  # median (p20–p80)

    # the not-ok section lists every failure with its error
    section = md.split("## Rows that are not ok")[1].split("## Environment")[0]
    for text in ("planted OOM", "rel_err 0.5 > tol 0.02", "sglang not importable"):
        assert text in section
    assert "| triton | 3.6.0 |" in md and "copy_gbps=3000.0" in md


def test_pngs_are_valid(tmp_path: Path) -> None:
    files = report.build_report(hand_run(tmp_path / "run"))
    kinds = {p.name.split("__")[-1] for p in files.plots}
    assert kinds == {"speedup.png", "latency.png", "roofline.png"}
    for p in files.plots:
        assert p.read_bytes()[:8] == PNG_MAGIC
        img = matplotlib.image.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 0.01, f"{p.name} is blank"


def test_html_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    files = report.build_report(hand_run(tmp_path / "run"), out=out)
    assert files.html.parent == out and (out / "speedup.md").exists()
    assert not (tmp_path / "run" / "report.html").exists()
    page = files.html.read_text()
    _assert_self_contained(page, out)
    assert page.count("<img ") == len(files.plots)
    for text in ("4.00× (n=2)", "NVIDIA H100 80GB HBM3", "rel_err 0.5 &gt; tol 0.02", "bf16_tflops=790.0",
                 "0123456789abcdef"):
        assert text in page


def test_against_adds_regressions_and_before_after(make_run: RunFactory) -> None:
    rows = standard_rows()
    for r in rows:
        if r["kernel"] == "rms_norm" and r["impl"] == "helion":
            r["mean_us"] *= 1.3
    base, new = make_run("base", seed=1), make_run("new", rows, seed=2)
    files = report.build_report(new, against=base)
    md, page = files.markdown.read_text(), files.html.read_text()
    assert "## Regressions vs base" in md and "| SLOWER | rms_norm | helion |" in md
    assert "FAIL" in page and "cls-SLOWER" in page
    assert any(p.name.endswith("__before_after.png") for p in files.plots)
    _assert_self_contained(page, new)


def test_cli_all_and_single(tmp_path: Path, make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_run("20261124T000000Z-a", seed=1), make_run("20261125T000000Z-b", seed=2)
    assert report.main(["--all", "--results-dir", str(tmp_path / "results")]) == 0
    assert (a / "report.html").exists() and (b / "report.html").exists() and (b / "speedup.md").exists()
    out = tmp_path / "out"
    assert report.main([str(b), "--out", str(out), "--jobs", "1"]) == 0
    assert (out / "report.html").exists()
    assert "report.html" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        report.main([])
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "missing")])


def test_empty_and_helion_less_runs(tmp_path: Path) -> None:
    empty = RunWriter(tmp_path / "empty", {}).run_dir
    files = report.build_report(empty)
    assert "No shape has both" in files.markdown.read_text()
    assert files.plots == []
    only_upstream = RunWriter(tmp_path / "up", dict(METADATA))
    only_upstream.add(_row("fused_moe", "vllm", "llama", 1, 100.0))
    files = report.build_report(only_upstream.run_dir)
    assert "No shape has both" in files.markdown.read_text()


def test_plots_drawn_in_worker_processes(tmp_path: Path) -> None:
    kernels = [f"rms_norm_{i}" for i in range(3)]
    rows = [dict(r, kernel=k) for k in kernels for r in standard_rows() if r["kernel"] == "rms_norm"]
    run = write_run(tmp_path / "run", rows, seed=1)
    files = report.build_report(run, jobs=2)
    assert sorted(p.name for p in files.plots) == sorted(
        f"{k}__llama-3.1-8b__{kind}.png" for k in kernels for kind in ("speedup", "latency", "roofline"))
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in files.plots)
