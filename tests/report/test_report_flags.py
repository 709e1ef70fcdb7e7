"""Report content: vs best upstream, the 10x flag, like-with-like timing, rows above a ceiling, the headline
helper, the recorded token axis and plot labels."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness import plots, report
from tests.report.runs import METADATA, write_run


def _spec(impl: str, m: int, mean: float, **kw: Any) -> dict[str, Any]:
    return {"kernel": "fused_moe", "category": "moe", "impl": impl, "model": "llama",
            "regime": "decode" if m <= 64 else "prefill", "shape": {"M": m, "N": 4096}, "dtype": "bf16",
            "mean_us": mean, **kw}


def _md_row(md: str, first: str, after: str = "## Kernels") -> list[str]:
    for line in md.split(after, 1)[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(first)


def test_vs_best_upstream_column_headline_and_summaries(tmp_path: Path) -> None:
    # M=1: vllm 100, sglang 80 -> best is sglang: 80 / 50 = 1.6; M=64: vllm 40, sglang 90 -> best vllm 40/50 = 0.8
    specs = [_spec("helion", 1, 50.0), _spec("vllm", 1, 100.0), _spec("sglang", 1, 80.0), _spec("torch", 1, 30.0),
             _spec("helion", 64, 50.0), _spec("vllm", 64, 40.0), _spec("sglang", 64, 90.0)]
    run = write_run(tmp_path / "run", specs, seed=0, spread=0.0)
    md = report.build_report(run, jobs=1).markdown.read_text()
    head = [ln for ln in md.split("## Headline", 1)[1].splitlines() if ln.startswith("| moe")][0]
    assert head.endswith("| 1.13× (n=2) |")  # geomean(1.6, 0.8); eager torch (30 us) is never the best upstream
    assert _md_row(md, "M=1")[-1] == "1.60× (sglang)"
    assert _md_row(md, "M=64")[-1] == "**0.80× (vllm)**"  # below 1.0: bold
    per_regime = md.split("### vs best upstream, per category, regime and dtype", 1)[1]
    assert "| moe | decode | bf16 | 2 | 1.13× | **0.80×** | 1 of 2 |" in per_regime
    assert "### vs best upstream, per kernel, regime and dtype" in md and "### vs best upstream, per category" in md
    page = (run / "report.html").read_text()
    assert "Helion vs best upstream" in page and 'class="num bad">0.80× (vllm)' in page


def test_headline_cli_prints_a_table_per_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", [_spec("helion", 1, 50.0), _spec("vllm", 1, 100.0),
                                   _spec("helion", 64, 50.0), _spec("vllm", 64, 40.0)], seed=0, spread=0.0)
    norm = [dict(_spec("helion", 8, 10.0), kernel="rms_norm", category="norm"),
            dict(_spec("vllm", 8, 12.0), kernel="rms_norm", category="norm")]
    b = write_run(tmp_path / "b", norm, seed=0, spread=0.0)
    before = sorted(p.name for p in a.iterdir())
    assert report.main(["--headline", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "**moe**" in out and "**norm**" in out
    assert "| kernel | n shapes | geomean vs best upstream | min | share below 1.0× |" in out
    assert "| fused_moe | 2 | 1.26× | 0.80× | 50 % |" in out  # geomean(2.0, 0.8)
    assert "| rms_norm | 1 | 1.20× | 1.20× | 0 % |" in out
    assert sorted(p.name for p in a.iterdir()) == before  # prints only


def test_headline_takes_each_row_from_the_newest_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_meta, new_meta = copy.deepcopy(METADATA), copy.deepcopy(METADATA)
    new_meta["date"] = "2026-11-27T03:00:00Z"  # a day after METADATA's
    old = write_run(tmp_path / "z-old", [_spec("helion", 1, 50.0), _spec("vllm", 1, 100.0),
                                         _spec("helion", 64, 50.0), _spec("vllm", 64, 40.0)],
                    seed=0, spread=0.0, metadata=old_meta)
    new = write_run(tmp_path / "a-new", [_spec("helion", 1, 25.0), _spec("vllm", 1, 100.0)],
                    seed=0, spread=0.0, metadata=new_meta)
    for argv in ([str(old), str(new)], [str(new), str(old)]):
        assert report.main(["--headline", *argv]) == 0
        out = capsys.readouterr().out
        # M=1 from the newer run only (100 / 25 = 4.0, not also the older 2.0); M=64 still from the older run
        assert "| fused_moe | 2 | 1.79× | 0.80× | 50 % |" in out, out  # geomean(4.0, 0.8)


def test_headline_current_port_leaves_out_rows_of_an_older_port(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import coverage

    old_meta, new_meta = copy.deepcopy(METADATA), copy.deepcopy(METADATA)
    old_meta["git_commit"], new_meta["git_commit"] = "a" * 40, "b" * 40
    new_meta["date"] = "2026-11-27T03:00:00Z"
    old = write_run(tmp_path / "old", [_spec("helion", 1, 50.0), _spec("vllm", 1, 100.0),
                                       _spec("helion", 64, 50.0), _spec("vllm", 64, 40.0)],
                    seed=0, spread=0.0, metadata=old_meta)
    new = write_run(tmp_path / "new", [_spec("helion", 1, 25.0), _spec("vllm", 1, 100.0)],
                    seed=0, spread=0.0, metadata=new_meta)
    # the port changed after the old run's commit, not after the new one's
    monkeypatch.setattr(coverage, "port_changed_since", lambda kernel, commit: commit == "a" * 40)
    monkeypatch.setattr(coverage, "config_changed", lambda key, row, gpu: False)  # (toy shapes: no buckets)
    assert report.main(["--headline", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "| fused_moe | 2 | 1.79× | 0.80× | 50 % |" in out and "older port" not in out  # all rows by default
    assert report.main(["--headline", "--current-port", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "| fused_moe | 1 | 4.00× | 4.00× | 0 % |" in out, out  # M=64's only Helion row is the old port's
    assert "Left out, measured on an older port: fused_moe 1 Helion rows." in out


def test_speedup_above_10x_is_flagged(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [_spec("helion", 1, 10.0), _spec("vllm", 1, 150.0),
                                       _spec("helion", 64, 50.0), _spec("vllm", 64, 60.0)], seed=0, spread=0.0)
    files = report.build_report(run, jobs=1)
    md, page = files.markdown.read_text(), files.html.read_text()
    assert "## Speedups above 10×" in md
    assert _md_row(md, "M=1")[-2] == "15.00× ⚑"
    assert _md_row(md, "M=64")[-2] == "1.20×"
    flagged = md.split("## Speedups above 10×", 1)[1].split("\n## ", 1)[0]
    assert "| fused_moe | llama | M=1 N=4096 | bf16 | vllm | 15.00× |" in flagged and "M=64" not in flagged
    assert 'id="flag-10x"' in page and "num good flag" in page


def test_speedup_only_between_rows_timed_the_same_way(tmp_path: Path) -> None:
    specs = [_spec("helion", 1, 50.0, timing_method="events"), _spec("vllm", 1, 100.0),
             _spec("helion", 64, 50.0), _spec("vllm", 64, 100.0)]
    run = write_run(tmp_path / "run", specs, seed=0, spread=0.0)
    md = report.build_report(run, jobs=1).markdown.read_text()
    row = _md_row(md, "M=1")
    assert row[-2] == "not comparable: Helion events vs vllm cuda_graph" and "2.00" not in row[-2]
    assert _md_row(md, "M=64")[-2] == "2.00×"
    head = [ln for ln in md.split("## Headline", 1)[1].splitlines() if ln.startswith("| moe")][0]
    assert "2.00× (n=1)" in head  # the pair that cannot be formed is left out of the geomean
    assert "## Pairs without a speedup: timed with different methods" in md


def test_rows_above_a_measured_ceiling_are_flagged(tmp_path: Path) -> None:
    meta = copy.deepcopy(METADATA)
    meta["ceilings"] = {"read_gbps": 4000.0, "copy_gbps": 3000.0, "bf16_tflops": 790.0, "fp8_tflops": 1500.0}
    # bytes / median: 4.4e6 B / 1 us = 4400 GB/s > read 4000 (110 %); the others are well below
    specs = [_spec("helion", 1, 1.0, bytes=4.4e6, flops=1e6), _spec("vllm", 1, 2.0, bytes=4.4e6, flops=1e6),
             dict(_spec("helion", 64, 10.0, flops=1.6e10), dtype="fp8_w8a8_block128"),
             dict(_spec("vllm", 64, 12.0), dtype="fp8_w8a8_block128")]
    run = write_run(tmp_path / "run", specs, seed=0, spread=0.0, metadata=meta)
    md = report.build_report(run, jobs=1).markdown.read_text()
    section = md.split("## Rows above 100 % of a measured ceiling", 1)[1].split("\n## ", 1)[0]
    assert "| fused_moe | helion | llama | M=1 bf16 | bf16 | 4400 GB/s | read_gbps 4000 | 110.0 % |" in section
    # fp8 FLOPs are held to the fp8 peak (1600 TFLOP/s / 1500 = 107 %), not to the bf16 one (203 %)
    assert "1600.0 TFLOP/s | fp8_tflops 1500 | 106.7 %" in section
    assert "vllm" not in section
    assert report.compute_ceiling("fp8_w8a8_block128", meta["ceilings"]) == ("fp8_tflops", 1500.0)
    assert report.compute_ceiling("int8_w8a8", {"int8_tops": 1400.0}) == ("int8_tops", 1400.0)
    assert report.compute_ceiling("bf16", meta["ceilings"]) == ("bf16_tflops", 790.0)
    assert report.compute_ceiling("fp32", meta["ceilings"]) is None
    assert report.bandwidth_ceiling({"copy_gbps": 1.0, "read_gbps": 2.0}) == ("read_gbps", 2.0)


def test_latency_axis_is_the_recorded_token_dim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def fake_latency(path: Path, title: str, xlabel: str, *rest: Any) -> Path:
        seen[path.name] = xlabel
        return path

    monkeypatch.setattr(plots, "latency_plot", fake_latency)
    specs = [dict(_spec(i, 1, 10.0), shape={"B": b, "M": 7 * b}) for i in ("helion", "vllm") for b in (1, 4)]
    meta = copy.deepcopy(METADATA)
    meta["token_dims"] = {"fused_moe": "B"}
    report.build_report(write_run(tmp_path / "new", specs, seed=0, metadata=meta), jobs=1)
    assert seen == {"fused_moe__llama__latency.png": "tokens (B)"}
    seen.clear()  # an old run without token_dims: the old guess (M)
    report.build_report(write_run(tmp_path / "old", specs, seed=0), jobs=1)
    assert seen == {"fused_moe__llama__latency.png": "tokens (M)"}


def test_plot_labels_units_and_error_bar_meaning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    figs = []
    real_save = plots._save

    def keep(fig: Any, path: Path) -> Path:
        figs.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    labels = ["M=1", "M=8"]
    plots.speedup_plot(tmp_path / "s.png", "t · bf16", labels, {"vllm": [(1.2, 1.1, 1.3), (0.9, 0.8, 1.0)]},
                       ["helion", "vllm"], "shape: M")
    plots.latency_plot(tmp_path / "l.png", "t", "tokens (M)", {"helion": [(1, 5.0, 4.0, 6.0), (8, 9.0, 8.0, 10.0)]},
                       {"helion": "red"})
    plots.before_after_plot(tmp_path / "b.png", "t", labels, {"helion": [5.0, 6.0]}, {"helion": [5.0, 6.5]},
                            {"helion": [(1.0, 0.9, 1.1), (1.08, 1.0, 1.1)]}, (0.95, 1.05), ["helion"], "shape: M")
    speed_ax, lat_ax = figs[0].axes[0], figs[1].axes[0]
    assert speed_ax.get_xlabel().startswith("shape: M") and "p20" in speed_ax.get_xlabel()
    assert "below 1.0" in speed_ax.get_xlabel()
    assert "µs" in lat_ax.get_ylabel() and "(us)" not in lat_ax.get_ylabel()
    assert "µs" in figs[2].axes[0].get_ylabel() and "confidence interval" in figs[2].axes[1].get_xlabel()
    # small, deterministic palette PNGs
    first = (tmp_path / "s.png").read_bytes()
    plots.speedup_plot(tmp_path / "s.png", "t · bf16", labels, {"vllm": [(1.2, 1.1, 1.3), (0.9, 0.8, 1.0)]},
                       ["helion", "vllm"], "shape: M")
    assert (tmp_path / "s.png").read_bytes() == first and len(first) < 40_000 and first[25] == 3  # colour type 3


def test_dtype_in_titles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    titles: list[str] = []

    def fake(path: Path, title: str, *rest: Any) -> Path:
        titles.append(title)
        return path

    for name in ("speedup_plot", "latency_plot", "roofline_plot"):
        monkeypatch.setattr(plots, name, fake)
    specs = [_spec(i, m, 10.0) for i in ("helion", "vllm") for m in (1, 64)]
    report.build_report(write_run(tmp_path / "r", specs, seed=0), jobs=1)
    assert len(titles) == 3 and all("· bf16" in t for t in titles)
