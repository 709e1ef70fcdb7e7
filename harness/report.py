"""Build a run's report from its results files alone (never imports kernels).

    harness report RUN [--against BASE] [--out DIR]
    harness report --all            # every run under results/ (what `make report` runs)

Writes into the run folder (or DIR):
    speedup.md     headline geomean speedups per category and model, per kernel x model shape tables,
                   the rows that are not ok (and, with --against, the regression table)
    plots/*.png    per kernel x model: Helion speedup per shape, latency vs tokens, % of the measured ceilings,
                   and with --against the before/after comparison
    report.html    one self-contained page: the same content, plots embedded as base64 PNG, inline CSS, no
                   scripts and no external URLs, plus the run's environment (metadata.json)

Speedup = upstream median / Helion median (> 1: Helion faster).  A geomean only uses shapes where both the
Helion row and the upstream row are `ok`; a row that is not ok shows its status and error, never a number.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import dataclasses
import html
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness import compare, plots, results

HELION = "helion"
TOKEN_KEYS = results.TOKEN_KEYS  # shape dims that hold the token count (x axis of the latency plot), first wins
#: metadata keys shown first in the environment table, in this order; other keys follow sorted
ENV_ORDER = ("gpu", "gpu_slug", "driver", "cuda", "torch", "triton", "helion", "python", "upstreams", "git_commit",
             "git_dirty", "date", "seed", "command", "ceilings")


# ----------------------------------------------------------------------------------------------------- data


@dataclasses.dataclass
class Point:
    """One shape x dtype of a kernel on a model, with every impl's row."""

    shape: str  # the CSV's JSON
    dtype: str
    regime: str
    params: dict[str, Any]
    rows: dict[str, dict[str, Any]]  # impl -> results row

    @property
    def tokens(self) -> float | None:
        for k in TOKEN_KEYS:
            v = self.params.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                return float(v)
        return None


@dataclasses.dataclass
class Group:
    """One kernel on one model: the unit of a shape table and a set of plots."""

    kernel: str
    model: str
    category: str
    impls: list[str]
    points: list[Point]
    labels: list[str]  # short per-point labels: only the dims that vary inside the group
    fixed: dict[str, Any]  # dims that are the same for every point

    @property
    def providers(self) -> list[str]:
        return [i for i in self.impls if i != HELION]

    @property
    def slug(self) -> str:
        return f"{_slug(self.kernel)}__{_slug(self.model)}"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-") or "x"


def _params(shape: str) -> dict[str, Any]:
    try:
        parsed = json.loads(shape)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def impl_order(impls: Sequence[str]) -> list[str]:
    """Helion first, upstream providers alphabetically, eager torch last."""
    uniq = sorted(set(impls))
    return ([HELION] if HELION in uniq else []) + [i for i in uniq if i not in (HELION, "torch")] + (
        ["torch"] if "torch" in uniq else [])


def _sortable(v: Any) -> tuple[int, Any]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v))
    return (1, json.dumps(v, sort_keys=True))


def _point_sort_key(p: Point) -> tuple[Any, ...]:
    # other dims first, tokens last: a latency line then reads left to right in the shape table too
    token_key = next((k for k in TOKEN_KEYS if k in p.params), None)
    rest = tuple((k, _sortable(p.params[k])) for k in sorted(p.params) if k != token_key)
    return (p.dtype, rest, p.tokens or 0.0, p.shape)


def build_groups(rows: Sequence[dict[str, Any]]) -> list[Group]:
    by_group: dict[tuple[str, str], dict[tuple[str, str], Point]] = {}
    categories: dict[tuple[str, str], str] = {}
    for r in rows:
        gk = (str(r["kernel"]), str(r["model"]))
        categories.setdefault(gk, str(r.get("category") or ""))
        points = by_group.setdefault(gk, {})
        pk = (str(r["shape"]), str(r["dtype"]))
        if pk not in points:
            points[pk] = Point(shape=pk[0], dtype=pk[1], regime=str(r.get("regime") or ""),
                               params=_params(pk[0]), rows={})
        points[pk].rows[str(r["impl"])] = r
    groups = []
    for (kernel, model), points in by_group.items():
        pts = sorted(points.values(), key=_point_sort_key)
        impls = impl_order([i for p in pts for i in p.rows])
        keys = sorted({k for p in pts for k in p.params})
        varying = [k for k in keys if len({json.dumps(p.params.get(k), sort_keys=True) for p in pts}) > 1]
        fixed = {k: pts[0].params.get(k) for k in keys if k not in varying}
        dtypes_vary = len({p.dtype for p in pts}) > 1
        labels = []
        for p in pts:
            parts = [f"{k}={p.params.get(k)}" for k in varying] + ([p.dtype] if dtypes_vary else [])
            labels.append(" ".join(parts) or compare.shape_label(p.shape) or p.dtype)
        groups.append(Group(kernel=kernel, model=model, category=categories[(kernel, model)], impls=impls,
                            points=pts, labels=labels, fixed=fixed))
    groups.sort(key=lambda g: (g.category, g.kernel, g.model))
    return groups


def _ok(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("status") == "ok" and (row.get("median_us") or 0) > 0


def speedup(point: Point, provider: str) -> plots.Interval | None:
    """(upstream median / Helion median, low, high) where low/high come from the p20/p80 of both rows."""
    h, u = point.rows.get(HELION), point.rows.get(provider)
    if not (_ok(h) and _ok(u)):
        return None
    s = u["median_us"] / h["median_us"]
    lo = hi = None
    if h.get("p20_us") and h.get("p80_us") and u.get("p20_us") and u.get("p80_us"):
        lo, hi = u["p20_us"] / h["p80_us"], u["p80_us"] / h["p20_us"]
    return (s, lo, hi)


def geomean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


@dataclasses.dataclass
class Headline:
    providers: list[str]
    # (category, model) -> provider -> (geomean, n shapes)
    cells: dict[tuple[str, str], dict[str, tuple[float | None, int]]]

    @property
    def empty(self) -> bool:
        return not any(n for cell in self.cells.values() for _g, n in cell.values())


def headline(groups: Sequence[Group]) -> Headline:
    providers = impl_order([p for g in groups for p in g.providers])
    acc: dict[tuple[str, str], dict[str, list[float]]] = {}
    for g in groups:
        cell = acc.setdefault((g.category, g.model), {})
        for prov in g.providers:
            vals = cell.setdefault(prov, [])
            for p in g.points:
                s = speedup(p, prov)
                if s is not None:
                    vals.append(s[0])
    all_cell: dict[str, list[float]] = {}
    for cell in acc.values():
        for prov, vals in cell.items():
            all_cell.setdefault(prov, []).extend(vals)
    cells = {k: {p: (geomean(v), len(v)) for p, v in cell.items()} for k, cell in sorted(acc.items())}
    if len(acc) > 1:
        cells[("all", "all")] = {p: (geomean(v), len(v)) for p, v in all_cell.items()}
    return Headline(providers=providers, cells=cells)


def group_geomeans(g: Group) -> dict[str, tuple[float | None, int]]:
    out = {}
    for prov in g.providers:
        vals = [s[0] for p in g.points if (s := speedup(p, prov)) is not None]
        out[prov] = (geomean(vals), len(vals))
    return out


# ----------------------------------------------------------------------------------------------- formatting


def fmt_us(x: float | None) -> str:
    if x is None:
        return ""
    if x < 10:
        return f"{x:.2f}"
    if x < 1000:
        return f"{x:.1f}"
    return f"{x:.0f}"


def fmt_x(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def _one_line(s: Any, limit: int) -> str:
    text = " ".join(str(s or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def not_ok_text(row: dict[str, Any], limit: int = 80) -> str:
    """What a non-ok cell shows: its status and error, never a number."""
    status = str(row["status"])
    err = _one_line(row.get("error"), limit)
    if not err:
        return status
    # runner errors often already start with the status ("unavailable: ...")
    return err if err.startswith(status) else f"{status}: {err}"


def impl_cell(row: dict[str, Any] | None) -> tuple[str, str]:
    """(median (p20–p80), eager) for one impl at one shape."""
    if row is None:
        return ("—", "—")
    if row.get("status") != "ok":
        return (not_ok_text(row), "")
    med = fmt_us(row.get("median_us"))
    if row.get("p20_us") is not None and row.get("p80_us") is not None:
        med += f" ({fmt_us(row['p20_us'])}–{fmt_us(row['p80_us'])})"
    return (med, fmt_us(row.get("eager_us")))


def shape_table(g: Group) -> tuple[list[str], list[list[str]], list[list[float | None]]]:
    """Header, cells and (for colouring) the speedup of each speedup cell."""
    header = ["shape", "dtype", "regime"]
    for impl in g.impls:
        header += [f"{impl} µs (p20–p80)", f"{impl} eager µs"]
    header += [f"Helion vs {p}" for p in g.providers] if HELION in g.impls else []
    body, speeds = [], []
    for label, p in zip(g.labels, g.points):
        cells = [label, p.dtype, p.regime]
        for impl in g.impls:
            cells += list(impl_cell(p.rows.get(impl)))
        sp: list[float | None] = []
        if HELION in g.impls:
            for prov in g.providers:
                s = speedup(p, prov)
                sp.append(None if s is None else s[0])
                cells.append(fmt_x(sp[-1]) if s is not None else "—")
        body.append(cells)
        speeds.append(sp)
    return header, body, speeds


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _env_items(meta: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in ENV_ORDER if k in meta] + sorted(k for k in meta if k not in ENV_ORDER)
    out = []
    for k in keys:
        v = meta[k]
        if isinstance(v, dict):
            text = ", ".join(f"{kk}={vv}" for kk, vv in v.items()) or "—"
        elif isinstance(v, list):
            text = " ".join(str(x) for x in v)
        else:
            text = str(v)
        out.append((k, text))
    return out


def headline_table(h: Headline) -> tuple[list[str], list[list[str]], list[list[float | None]]]:
    header = ["category", "model"] + [f"Helion vs {p}" for p in h.providers]
    body, speeds = [], []
    for (cat, model), cell in h.cells.items():
        row, sp = [cat, model], []
        for p in h.providers:
            g, n = cell.get(p, (None, 0))
            sp.append(g)
            row.append(f"{fmt_x(g)} (n={n})" if g is not None else "—")
        body.append(row)
        speeds.append(sp)
    return header, body, speeds


def compare_table(res: compare.CompareResult) -> tuple[list[str], list[list[str]], list[str]]:
    """The regression table: every row that is not SAME (SAME rows are only counted)."""
    rows = [r for r in res.rows if r.cls != compare.SAME]
    return list(compare.TABLE_HEADER), [compare.table_cells(r) for r in rows], [r.cls for r in rows]


# ----------------------------------------------------------------------------------------------------- plots


#: one plot to draw: (kind, plots function, its arguments); built here, drawn serially or in worker processes
PlotJob = tuple[str, Callable[..., Path], tuple[Any, ...]]


def _plot_jobs(g: Group, out: Path, meta: dict[str, Any]) -> list[PlotJob]:
    jobs: list[PlotJob] = []
    title = f"{g.kernel} · {g.model}"
    fixed = " ".join(f"{k}={v}" for k, v in g.fixed.items())
    if fixed:
        title += f"  ({fixed})"
    colors = {i: plots.impl_color(i, g.impls) for i in g.impls}

    if HELION in g.impls and g.providers:
        series = {prov: [speedup(p, prov) for p in g.points] for prov in g.providers}
        series = {k: v for k, v in series.items() if any(s is not None for s in v)}
        if series:
            jobs.append(("speedup", plots.speedup_plot,
                         (out / f"{g.slug}__speedup.png", f"Helion speedup: {title}", g.labels, series, g.impls)))

    if len({p.tokens for p in g.points if p.tokens is not None}) >= 2:
        token_key = next(k for k in TOKEN_KEYS if any(k in p.params for p in g.points))
        lines: dict[str, list[tuple[float, float, float | None, float | None]]] = {}
        line_colors: dict[str, str] = {}
        for p in g.points:
            if p.tokens is None:
                continue
            rest = " ".join(f"{k}={v}" for k, v in p.params.items() if k not in TOKEN_KEYS and k not in g.fixed)
            if len({q.dtype for q in g.points}) > 1:
                rest = f"{rest} {p.dtype}".strip()
            for impl in g.impls:
                r = p.rows.get(impl)
                if _ok(r):
                    name = f"{impl} {rest}".strip()
                    line_colors[name] = colors[impl]
                    lines.setdefault(name, []).append((p.tokens, r["median_us"], r.get("p20_us"), r.get("p80_us")))
        if lines:
            jobs.append(("latency", plots.latency_plot, (out / f"{g.slug}__latency.png", f"latency vs tokens: {title}",
                                                         f"tokens ({token_key})", lines, line_colors)))

    ceilings = meta.get("ceilings") or {}
    copy_gbps, bf16_tflops = ceilings.get("copy_gbps"), ceilings.get("bf16_tflops")
    bw = cp = None
    if copy_gbps:
        bw = {i: [100.0 * r["gbps"] / copy_gbps if _ok(r := p.rows.get(i)) and r.get("gbps") else None
                  for p in g.points] for i in g.impls}
        bw = {k: v for k, v in bw.items() if any(x is not None for x in v)} or None
    if bf16_tflops:
        cp = {i: [100.0 * r["tflops"] / bf16_tflops if _ok(r := p.rows.get(i)) and r.get("tflops") else None
                  for p in g.points] for i in g.impls}
        cp = {k: v for k, v in cp.items() if any(x is not None for x in v)} or None
    if bw or cp:
        jobs.append(("roofline", plots.roofline_plot, (
            out / f"{g.slug}__roofline.png", f"% of measured ceilings: {title}", g.labels, bw, cp, g.impls,
            f"% of copy bandwidth ({copy_gbps:g} GB/s)" if copy_gbps else "",
            f"% of bf16 matmul peak ({bf16_tflops:g} TFLOP/s)" if bf16_tflops else "")))
    return jobs


def _before_after_job(g: Group, res: compare.CompareResult, by_key: dict[tuple[str, ...], compare.CompareRow],
                      out: Path) -> PlotJob | None:
    before: dict[str, list[float | None]] = {}
    after: dict[str, list[float | None]] = {}
    ratios: dict[str, list[plots.Interval | None]] = {}
    any_ratio = False
    for impl in g.impls:
        b, a, rt = [], [], []
        for p in g.points:
            key = compare.canonical_key((g.kernel, impl, g.model, p.shape, p.dtype))
            c = by_key.get(key)
            b.append(c.base_median_us if c and c.base_status == "ok" else None)
            a.append(c.new_median_us if c and c.new_status == "ok" else None)
            if c and c.ratio is not None:
                rt.append((c.ratio, c.ci_low, c.ci_high))
                any_ratio = True
            else:
                rt.append(None)
        before[impl], after[impl], ratios[impl] = b, a, rt
    if not any_ratio:
        return None
    band = (1.0 / (1.0 + res.threshold), 1.0 + res.threshold)
    return ("before_after", plots.before_after_plot,
            (out / f"{g.slug}__before_after.png", f"{g.kernel} · {g.model}: {res.base.name} → {res.new.name}",
             g.labels, before, after, ratios, band, g.impls))


def _fork_is_safe() -> bool:
    # the bench calls the report in its own process: never fork a process that has initialised CUDA
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    torch = sys.modules.get("torch")
    return not (torch is not None and torch.cuda.is_initialized())


def default_jobs() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _draw(jobs: Sequence[tuple[str, PlotJob]], workers: int) -> dict[str, dict[str, Path]]:
    """Draw every plot; Agg rendering is CPU-bound Python, so a big run draws in worker processes."""
    made: dict[str, dict[str, Path]] = {}
    if workers > 1 and len(jobs) >= 8 and _fork_is_safe():
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [(slug, kind, pool.submit(fn, *args)) for slug, (kind, fn, args) in jobs]
            for slug, kind, fut in futures:
                made.setdefault(slug, {})[kind] = fut.result()
    else:
        for slug, (kind, fn, args) in jobs:
            made.setdefault(slug, {})[kind] = fn(*args)
    return made


# ------------------------------------------------------------------------------------------------------ html

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
       max-width: 1400px; padding: 0 16px; color: #1b1b1b; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; border-bottom: 2px solid #ddd; padding-top: 12px; }
h3 { font-size: 15px; margin-bottom: 4px; } .sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 12.5px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; } tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.good { background: #d9f2d9 !important; } td.bad { background: #f8d7d7 !important; }
td.bad-status { color: #a40000; } .cls-SLOWER, .cls-NOW-INCORRECT { color: #a40000; font-weight: 600; }
.cls-FASTER, .cls-NOW-OK { color: #176317; font-weight: 600; } .cls-NOISY { color: #8a6d00; }
.warn { border: 2px solid #c00; background: #fff0f0; padding: 8px 12px; white-space: pre-wrap;
        font-family: ui-monospace, monospace; font-size: 12px; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.plots img { max-width: 100%; border: 1px solid #e3e3e3; }
nav ul { columns: 3; font-size: 12.5px; }
code { font-size: 12px; }
"""


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _speed_class(s: float | None) -> str:
    if s is None:
        return ""
    return " good" if s >= 1.05 else " bad" if s <= 1 / 1.05 else ""


def html_table(header: Sequence[str], body: Sequence[Sequence[str]],
               speeds: Sequence[Sequence[float | None]] | None = None, n_speed_cols: int = 0,
               row_classes: Sequence[str] | None = None) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(body):
        tds = []
        first_speed = len(row) - n_speed_cols
        for j, c in enumerate(row):
            cls = ""
            if speeds is not None and j >= first_speed:
                cls = "num" + _speed_class(speeds[i][j - first_speed])
            elif re.fullmatch(r"[\d.]+( \([\d.]+–[\d.]+\))?", c):
                cls = "num"
            elif re.match(r"(incorrect|error|timeout|unavailable)\b", c):
                cls = "bad-status"
            if row_classes is not None and j == 0:
                cls = f"cls-{row_classes[i]}"
            tds.append(f'<td class="{cls}">{_esc(c)}</td>' if cls else f"<td>{_esc(c)}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


# ---------------------------------------------------------------------------------------------------- report


@dataclasses.dataclass
class ReportFiles:
    markdown: Path
    html: Path
    plots: list[Path]


def build_report(run: Path, out: Path | None = None, against: Path | None = None, threshold: float = 0.05,
                 alpha: float = 0.01, jobs: int | None = None) -> ReportFiles:
    """Write speedup.md, plots/*.png and report.html for `run` into `out` (default: the run folder)."""
    run = Path(run)
    out = Path(out) if out is not None else run
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "plots"
    rows, meta = results.read_rows(run), results.read_metadata(run)  # samples are only for compare
    groups = build_groups(rows)
    head = headline(groups)
    cmp_res = compare.compare_runs(against, run, threshold=threshold, alpha=alpha) if against else None

    for stale in plot_dir.glob("*__*.png"):  # a previous report's plots (e.g. an old --against)
        stale.unlink()
    plot_jobs: list[tuple[str, PlotJob]] = []
    cmp_by_key = cmp_res.by_key() if cmp_res is not None else {}
    for g in groups:
        plot_jobs += [(g.slug, job) for job in _plot_jobs(g, plot_dir, meta)]
        if cmp_res is not None and (ba := _before_after_job(g, cmp_res, cmp_by_key, plot_dir)) is not None:
            plot_jobs.append((g.slug, ba))
    group_plots = _draw(plot_jobs, default_jobs() if jobs is None else jobs)

    not_ok = [r for r in rows if r.get("status") != "ok"]
    status_counts: dict[str, int] = {}
    for r in rows:
        status_counts[str(r.get("status"))] = status_counts.get(str(r.get("status")), 0) + 1

    md = _markdown(run, out, meta, groups, head, group_plots, not_ok, status_counts, cmp_res)
    md_path = out / "speedup.md"
    md_path.write_text(md)
    html_path = out / "report.html"
    html_path.write_text(_html(run, meta, groups, head, group_plots, not_ok, status_counts, cmp_res))
    return ReportFiles(markdown=md_path, html=html_path, plots=[p for d in group_plots.values() for p in d.values()])


def _subtitle(meta: dict[str, Any]) -> str:
    parts = [str(meta[k]) for k in ("gpu", "date") if meta.get(k)]
    if meta.get("git_commit"):
        parts.append(f"commit {str(meta['git_commit'])[:12]}" + (" (dirty)" if meta.get("git_dirty") else ""))
    parts += [f"{k} {meta[k]}" for k in ("helion", "triton", "torch") if meta.get(k)]
    return " · ".join(parts)


_DEFINITION = ("Speedup = upstream median / Helion median (> 1: Helion faster). Geomeans use only shapes where both "
               "rows are `ok`; n = number of such shapes. Times are device times per call in µs (CUDA graph or "
               "events, L2 flushed): median (p20–p80); eager = back-to-back eager calls, host launch overhead "
               "included.")


def _markdown(run: Path, out: Path, meta: dict[str, Any], groups: Sequence[Group], head: Headline,
              group_plots: dict[str, dict[str, Path]], not_ok: Sequence[dict[str, Any]],
              status_counts: dict[str, int], cmp_res: compare.CompareResult | None) -> str:
    md = [f"# Helion vs upstream: {run.name}", "", _subtitle(meta), "", _DEFINITION, "",
          "Rows: " + ", ".join(f"{n} {s}" for s, n in sorted(status_counts.items())), "", "## Headline", ""]
    if not head.empty:
        h, b, _ = headline_table(head)
        md += [md_table(h, b), ""]
    else:
        md += ["No shape has both a Helion row and an upstream row that are ok.", ""]

    if cmp_res is not None:
        md += [f"## Regressions vs {cmp_res.base.name}", ""]
        for w in cmp_res.warnings:
            md += ["> **WARNING:** " + w.replace("\n", "  \n> "), ""]
        md += ["Classes: " + ", ".join(f"{n} {c}" for c, n in cmp_res.counts().items())
               + f" (threshold {cmp_res.threshold:g}, alpha {cmp_res.alpha:g}; SAME rows not listed).", ""]
        h, b, _ = compare_table(cmp_res)
        md += [md_table(h, b) if b else "Every row is SAME.", ""]

    md += ["## Kernels", ""]
    for g in groups:
        md += [f"### {g.category} / {g.kernel} · {g.model}", ""]
        if g.fixed:
            md += ["Fixed dims: " + ", ".join(f"{k}={v}" for k, v in g.fixed.items()), ""]
        gm = group_geomeans(g) if HELION in g.impls else {}
        if gm:
            md += ["Geomean: " + ", ".join(f"Helion vs {p} {fmt_x(v)} (n={n})" for p, (v, n) in gm.items()), ""]
        h, b, _ = shape_table(g)
        md += [md_table(h, b), ""]
        for kind, path in group_plots.get(g.slug, {}).items():
            md += [f"![{kind}]({path.relative_to(out).as_posix()})", ""]

    md += ["## Rows that are not ok", ""]
    if not_ok:
        md += [md_table(["kernel", "impl", "model", "shape", "dtype", "status", "error"],
                        [[r["kernel"], r["impl"], r["model"], compare.shape_label(str(r["shape"])), r["dtype"],
                          r["status"], _one_line(r.get("error"), 300)] for r in not_ok]), ""]
    else:
        md += ["None.", ""]
    md += ["## Environment", "", md_table(["key", "value"], _env_items(meta)), ""]
    return "\n".join(md)


def _html(run: Path, meta: dict[str, Any], groups: Sequence[Group], head: Headline,
          group_plots: dict[str, dict[str, Path]], not_ok: Sequence[dict[str, Any]],
          status_counts: dict[str, int], cmp_res: compare.CompareResult | None) -> str:
    title = f"Helion vs upstream: {run.name}"
    body = [f"<h1>{_esc(title)}</h1>", f'<p class="sub">{_esc(_subtitle(meta))}</p>',
            f"<p>{_esc(_DEFINITION)}</p>",
            "<p>Rows: " + _esc(", ".join(f"{n} {s}" for s, n in sorted(status_counts.items()))) + "</p>"]

    nav = ['<li><a href="#headline">Headline</a></li>']
    if cmp_res is not None:
        nav.append('<li><a href="#regressions">Regressions</a></li>')
    nav += [f'<li><a href="#k-{_esc(g.slug)}">{_esc(g.kernel)} · {_esc(g.model)}</a></li>' for g in groups]
    nav += ['<li><a href="#not-ok">Rows that are not ok</a></li>', '<li><a href="#env">Environment</a></li>']
    body.append("<nav><ul>" + "".join(nav) + "</ul></nav>")

    body.append('<h2 id="headline">Headline: geomean speedup of Helion per category and model</h2>')
    if not head.empty:
        h, b, s = headline_table(head)
        body.append(html_table(h, b, s, n_speed_cols=len(head.providers)))
    else:
        body.append("<p>No shape has both a Helion row and an upstream row that are ok.</p>")

    if cmp_res is not None:
        body.append(f'<h2 id="regressions">Regressions vs {_esc(cmp_res.base.name)}</h2>')
        for w in cmp_res.warnings:
            body.append(f'<div class="warn">WARNING: {_esc(w)}</div>')
        verdict = "FAIL" if cmp_res.exit_code else "PASS"
        body.append(f"<p><b>{verdict}</b>: " + _esc(", ".join(f"{n} {c}" for c, n in cmp_res.counts().items()))
                    + _esc(f" (threshold {cmp_res.threshold:g}, alpha {cmp_res.alpha:g}; SAME rows not listed)")
                    + "</p>")
        h, b, classes = compare_table(cmp_res)
        body.append(html_table(h, b, row_classes=classes) if b else "<p>Every row is SAME.</p>")

    body.append("<h2>Kernels</h2>")
    for g in groups:
        body.append(f'<h3 id="k-{_esc(g.slug)}">{_esc(g.category)} / {_esc(g.kernel)} · {_esc(g.model)}</h3>')
        if g.fixed:
            body.append("<p>Fixed dims: <code>" + _esc(", ".join(f"{k}={v}" for k, v in g.fixed.items()))
                        + "</code></p>")
        gm = group_geomeans(g) if HELION in g.impls else {}
        if gm:
            body.append("<p>Geomean: " + _esc(", ".join(f"Helion vs {p} {fmt_x(v)} (n={n})"
                                                        for p, (v, n) in gm.items())) + "</p>")
        h, b, s = shape_table(g)
        body.append(html_table(h, b, s, n_speed_cols=len(g.providers) if HELION in g.impls else 0))
        imgs = [_img(p, f"{kind}: {g.kernel} {g.model}") for kind, p in group_plots.get(g.slug, {}).items()]
        if imgs:
            body.append('<div class="plots">' + "\n".join(imgs) + "</div>")

    body.append('<h2 id="not-ok">Rows that are not ok</h2>')
    if not_ok:
        body.append(html_table(["kernel", "impl", "model", "shape", "dtype", "status", "error"],
                               [[str(r["kernel"]), str(r["impl"]), str(r["model"]),
                                 compare.shape_label(str(r["shape"])), str(r["dtype"]), str(r["status"]),
                                 _one_line(r.get("error"), 500)] for r in not_ok]))
    else:
        body.append("<p>None.</p>")
    body.append('<h2 id="env">Environment</h2>')
    body.append(html_table(["key", "value"], _env_items(meta)))

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------------------- cli


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness report", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, nargs="?", help="run folder (results/<gpu>/<run-id>)")
    ap.add_argument("--all", action="store_true", help="rebuild the report of every run under results/")
    ap.add_argument("--against", type=Path, metavar="BASE", help="baseline run: add the regression table and "
                    "before/after plots")
    ap.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: the run folder)")
    ap.add_argument("--threshold", type=float, default=0.05, help="compare threshold with --against (default 0.05)")
    ap.add_argument("--alpha", type=float, default=0.01, help="compare significance with --against (default 0.01)")
    ap.add_argument("--jobs", type=int, default=None, help="processes drawing plots (default: CPUs, at most 8)")
    ap.add_argument("--results-dir", type=Path, default=results.RESULTS_DIR, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.all:
        if args.run or args.out or args.against:
            ap.error("--all takes no RUN, --out or --against")
        runs = results.list_runs(args.results_dir)
        if not runs:
            print(f"no runs under {args.results_dir}")
            return 0
        failed = 0
        for run in runs:
            try:
                files = build_report(run, jobs=args.jobs)
            except Exception as e:  # one broken run must not hide the reports of the others
                failed += 1
                print(f"FAILED {run}: {type(e).__name__}: {e}", file=sys.stderr)
            else:
                print(files.html)
        return 1 if failed else 0

    if args.run is None:
        ap.error("give a RUN folder or --all")
    for p in (args.run, args.against):
        if p is not None and not (p / "results.csv").exists():
            ap.error(f"{p}: no results.csv (is this a run folder?)")
    files = build_report(args.run, out=args.out, against=args.against, threshold=args.threshold, alpha=args.alpha,
                         jobs=args.jobs)
    print(files.markdown)
    print(files.html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
