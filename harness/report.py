"""Build a run's report from its results files alone (never imports kernels).

    harness report RUN [--against BASE | --no-against] [--out DIR] [--allow-incomplete]
    harness report --all            # every run under results/ (what `make report` runs)
    harness report --headline RUN...  # markdown tables vs the best upstream per category (the README headline)

Writes into the run folder (or DIR):
    speedup.md     headline geomean speedups per category and model (per upstream and vs the best upstream),
                   vs-best-upstream summaries per regime x dtype, per kernel and per category, per kernel x model
                   shape tables (with, where upstream rows note `substituted steps alone: <x> us`, those steps'
                   share of the row and Helion's speedup if they were free), flags (speedups above 10x, rows
                   above a measured ceiling, pairs timed with different methods), the rows that are not ok (and,
                   with --against, the regression table)
    plots/*.png    per kernel x model: Helion speedup per shape, latency vs tokens, % of the measured ceilings,
                   and with --against the before/after comparison (small palette PNGs, byte-reproducible)
    report.html    one page: the same content, inline CSS, no scripts and no external URLs; the plots are the
                   PNG files next to it (plots/), referenced, not embedded, so a run folder stays small

A run's report is reproducible: `--against BASE` is recorded in the run's metadata.json (`report_against`, the
base's path relative to the run) and a later `report RUN` (e.g. `make report`) rebuilds the same regression
section; plot files are only ever written, never deleted.  A corrupt or incomplete run is refused with one line
(exit 2) before anything is written.

Speedup = upstream median / Helion median (> 1: Helion faster), formed only between two `ok` rows timed the same
way (`timing_method`); "vs best upstream" divides the fastest `ok` upstream row of the shape (eager torch is not
an upstream) by Helion.  A geomean only uses shapes where the pair exists; a row that is not ok shows its status
and error, never a number.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import html
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness import compare, plots, results

HELION = "helion"
#: not an upstream: eager PyTorch is shown as a reference, never the "best upstream"
EAGER = "torch"
BEST = "best upstream"
#: the KernelBench rule: a speedup this large gets a second look before anyone quotes it
SUSPICIOUS_SPEEDUP = 10.0
#: metadata keys shown first in the environment table, in this order; other keys follow sorted
ENV_ORDER = ("gpu", "gpu_slug", "driver", "cuda", "torch", "triton", "helion", "python", "upstreams", "git_commit",
             "git_dirty", "date", "seed", "command", "ceilings", "ceilings_method")


# ----------------------------------------------------------------------------------------------------- data


@dataclasses.dataclass
class Point:
    """One shape x dtype of a kernel on a model, with every impl's row."""

    shape: str  # the CSV's JSON
    dtype: str
    regime: str
    params: dict[str, Any]
    rows: dict[str, dict[str, Any]]  # impl -> results row
    token_key: str | None = None  # the run's token dim for this kernel (metadata token_dims, or the old guess)

    @property
    def tokens(self) -> float | None:
        v = self.params.get(self.token_key) if self.token_key else None
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
    varying: list[str] = dataclasses.field(default_factory=list)  # the dims the labels show

    @property
    def providers(self) -> list[str]:
        return [i for i in self.impls if i != HELION]

    @property
    def upstreams(self) -> list[str]:
        return [i for i in self.providers if i != EAGER]

    @property
    def dtypes(self) -> list[str]:
        return list(dict.fromkeys(p.dtype for p in self.points))

    @property
    def token_key(self) -> str | None:
        return next((p.token_key for p in self.points if p.token_key), None)

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
    return ([HELION] if HELION in uniq else []) + [i for i in uniq if i not in (HELION, EAGER)] + (
        [EAGER] if EAGER in uniq else [])


def _sortable(v: Any) -> tuple[int, Any]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v))
    return (1, json.dumps(v, sort_keys=True))


def _point_sort_key(p: Point) -> tuple[Any, ...]:
    # other dims first, tokens last: a latency line then reads left to right in the shape table too
    rest = tuple((k, _sortable(p.params[k])) for k in sorted(p.params) if k != p.token_key)
    return (p.dtype, rest, p.tokens or 0.0, p.shape)


def build_groups(rows: Sequence[dict[str, Any]], meta: Mapping[str, Any] | None = None) -> list[Group]:
    meta = meta or {}
    by_group: dict[tuple[str, str], dict[tuple[str, str], Point]] = {}
    categories: dict[tuple[str, str], str] = {}
    for r in rows:
        gk = (str(r["kernel"]), str(r["model"]))
        categories.setdefault(gk, str(r.get("category") or ""))
        points = by_group.setdefault(gk, {})
        pk = (str(r["shape"]), str(r["dtype"]))
        if pk not in points:
            params = _params(pk[0])
            points[pk] = Point(shape=pk[0], dtype=pk[1], regime=str(r.get("regime") or ""), params=params,
                               rows={}, token_key=results.token_dim(meta, gk[0], params))
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
                            points=pts, labels=labels, fixed=fixed, varying=varying))
    groups.sort(key=lambda g: (g.category, g.kernel, g.model))
    return groups


def _ok(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("status") == "ok" and (row.get("median_us") or 0) > 0


@dataclasses.dataclass(frozen=True)
class Pair:
    """Helion against one upstream (or the best upstream) at one shape: a speedup, or why there is none."""

    value: float | None
    low: float | None = None
    high: float | None = None
    provider: str = ""  # for BEST: which upstream was fastest
    reason: str = ""  # why no value although both rows are ok (e.g. timed differently)

    @property
    def interval(self) -> plots.Interval | None:
        return None if self.value is None else (self.value, self.low, self.high)


def _method(row: dict[str, Any]) -> str:
    return str(row.get("timing_method") or "")


def _pair(h: dict[str, Any], u: dict[str, Any], provider: str) -> Pair:
    hm, um = _method(h), _method(u)
    if hm and um and hm != um:
        # a CUDA-graph replay and an event-timed direct launch measure different things (launch gaps count in
        # one only): the ratio would mix a timer difference into the speedup
        return Pair(None, provider=provider, reason=f"not comparable: Helion {hm} vs {provider} {um}")
    lo = hi = None
    if h.get("p20_us") and h.get("p80_us") and u.get("p20_us") and u.get("p80_us"):
        lo, hi = u["p20_us"] / h["p80_us"], u["p80_us"] / h["p20_us"]
    return Pair(u["median_us"] / h["median_us"], lo, hi, provider=provider)


def pair(point: Point, provider: str) -> Pair | None:
    """Helion vs `provider` (or BEST) at this point; None when either side has no ok row."""
    h = point.rows.get(HELION)
    if not _ok(h):
        return None
    if provider == BEST:
        ups = [(r["median_us"], i) for i, r in point.rows.items() if i not in (HELION, EAGER) and _ok(r)]
        if not ups:
            return None
        _t, best = min(ups)
        return _pair(h, point.rows[best], best)
    u = point.rows.get(provider)
    return _pair(h, u, provider) if _ok(u) else None


def speedup(point: Point, provider: str) -> plots.Interval | None:
    """(upstream median / Helion median, low, high) where low/high come from the p20/p80 of both rows; None when
    there is no comparable pair."""
    p = pair(point, provider)
    return None if p is None else p.interval


def geomean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def speedup_frame(groups: Sequence[Group]) -> pd.DataFrame:
    """One row per Helion x upstream pair (and per Helion x best upstream) that has a speedup: the data every
    geomean of the report is computed from."""
    recs = []
    for g in groups:
        if HELION not in g.impls:
            continue
        for p in g.points:
            for prov in [*g.providers, BEST]:
                pr = pair(p, prov)
                if pr is None or pr.value is None:
                    continue
                recs.append({"category": g.category, "kernel": g.kernel, "model": g.model, "shape": p.shape,
                             "dtype": p.dtype, "regime": p.regime, "provider": prov, "upstream": pr.provider,
                             "speedup": pr.value})
    cols = ["category", "kernel", "model", "shape", "dtype", "regime", "provider", "upstream", "speedup"]
    return pd.DataFrame(recs, columns=cols).astype({"speedup": "float64"})


def _geo(s: pd.Series) -> float:
    s = s[(s > 0) & s.map(math.isfinite)]
    return float(math.exp(s.map(math.log).mean())) if len(s) else math.nan


def summarize(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """geomean, min, n and n below 1.0 of the speedups per `by` group."""
    if frame.empty:
        return pd.DataFrame(columns=[*by, "n", "geomean", "min", "below_1"])
    out = frame.groupby(list(by), sort=True)["speedup"].agg(
        n="size", geomean=_geo, min="min", below_1=lambda s: int((s < 1.0).sum()))
    return out.reset_index()


@dataclasses.dataclass
class Headline:
    providers: list[str]  # per-upstream columns, then BEST
    # (category, model) -> provider -> (geomean, n shapes)
    cells: dict[tuple[str, str], dict[str, tuple[float | None, int]]]

    @property
    def empty(self) -> bool:
        return not any(n for cell in self.cells.values() for _g, n in cell.values())


def headline(groups: Sequence[Group], frame: pd.DataFrame | None = None) -> Headline:
    frame = speedup_frame(groups) if frame is None else frame
    providers = impl_order([p for g in groups if HELION in g.impls for p in g.providers]) + [BEST]
    cells: dict[tuple[str, str], dict[str, tuple[float | None, int]]] = {}
    for (cat, model), part in frame.groupby(["category", "model"], sort=True):
        cells[(str(cat), str(model))] = _cell(part)
    if len(cells) > 1:
        cells[("all", "all")] = _cell(frame)
    return Headline(providers=providers, cells=cells)


def _cell(part: pd.DataFrame) -> dict[str, tuple[float | None, int]]:
    out = {}
    for prov, sub in part.groupby("provider", sort=True):
        g = _geo(sub["speedup"])
        out[str(prov)] = (None if math.isnan(g) else g, len(sub))
    return out


def group_geomeans(g: Group) -> dict[str, tuple[float | None, int]]:
    out = {}
    for prov in [*g.providers, BEST]:
        vals = [pr.value for p in g.points if (pr := pair(p, prov)) is not None and pr.value is not None]
        if prov != BEST or vals:
            out[prov] = (geomean(vals), len(vals))
    return out


def suspicious(groups: Sequence[Group]) -> list[tuple[Group, Point, str, float]]:
    """Speedups above SUSPICIOUS_SPEEDUP: (group, point, provider, speedup)."""
    out = []
    for g in groups:
        for p in g.points:
            for prov in g.providers:
                pr = pair(p, prov)
                if pr is not None and pr.value is not None and pr.value > SUSPICIOUS_SPEEDUP:
                    out.append((g, p, prov, pr.value))
    return out


def not_comparable(groups: Sequence[Group]) -> list[tuple[Group, Point, str, str]]:
    out = []
    for g in groups:
        for p in g.points:
            for prov in g.providers:
                pr = pair(p, prov)
                if pr is not None and pr.value is None:
                    out.append((g, p, prov, pr.reason))
    return out


# ------------------------------------------------------------------------------------------------ ceilings


def bandwidth_ceiling(ceilings: Mapping[str, Any]) -> tuple[str, float] | None:
    """The streaming-read ceiling (what a kernel that reads its bytes once is bound by); old runs without it
    fall back to the copy rate."""
    for key in ("read_gbps", "copy_gbps"):
        v = ceilings.get(key)
        if isinstance(v, (int, float)) and v > 0:
            return key, float(v)
    return None


def compute_ceiling(dtype: str, ceilings: Mapping[str, Any]) -> tuple[str, float] | None:
    """The matmul peak of the dtype's compute type: fp8 and int8 rows against their own tensor-core peaks,
    16-bit (and weight-only quantized, which computes in 16 bit) against bf16; None for fp32 and unknowns."""
    d = dtype.lower()
    if "fp8" in d or "e4m3" in d or "w8a8_fp8" in d:
        key = "fp8_tflops"
    elif "int8" in d or d.startswith("w8a8"):
        key = "int8_tops"
    elif d in ("fp32", "float32", "tf32"):
        return None
    else:
        key = "fp16_tflops" if d in ("fp16", "float16") and ceilings.get("fp16_tflops") else "bf16_tflops"
    v = ceilings.get(key)
    return (key, float(v)) if isinstance(v, (int, float)) and v > 0 else None


def roofline_pct(row: dict[str, Any], dtype: str, ceilings: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(% of the bandwidth ceiling, % of the dtype's matmul peak) of an ok row, None where unknown."""
    if not _ok(row):
        return None, None
    bw, cp = bandwidth_ceiling(ceilings), compute_ceiling(dtype, ceilings)
    b = 100.0 * row["gbps"] / bw[1] if bw and row.get("gbps") else None
    c = 100.0 * row["tflops"] / cp[1] if cp and row.get("tflops") else None
    return b, c


def above_ceiling(groups: Sequence[Group], meta: Mapping[str, Any]) -> list[list[str]]:
    """Rows that claim more than 100 % of a measured ceiling: a byte or FLOP count bug or a bad ceiling."""
    ceilings = meta.get("ceilings") or {}
    out = []
    for g in groups:
        for label, p in zip(g.labels, g.points):
            for impl in g.impls:
                r = p.rows.get(impl)
                b, c = roofline_pct(r, p.dtype, ceilings) if r else (None, None)
                if b is not None and b > 100.0:
                    key, v = bandwidth_ceiling(ceilings)
                    out.append([g.kernel, impl, g.model, label, p.dtype, f"{r['gbps']:.0f} GB/s",
                                f"{key} {v:g}", f"{b:.1f} %"])
                if c is not None and c > 100.0:
                    key, v = compute_ceiling(p.dtype, ceilings)
                    out.append([g.kernel, impl, g.model, label, p.dtype, f"{r['tflops']:.1f} TFLOP/s",
                                f"{key} {v:g}", f"{c:.1f} %"])
    return out


ABOVE_HEADER = ["kernel", "impl", "model", "shape", "dtype", "achieved", "ceiling", "% of ceiling"]


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


#: appended to a speedup above SUSPICIOUS_SPEEDUP (and explained under the table)
FLAG = " ⚑"


def fmt_speed(pr: Pair | None) -> str:
    """A speedup cell: the number (flagged above 10×), or why there is none."""
    if pr is None:
        return "—"
    if pr.value is None:
        return pr.reason
    text = fmt_x(pr.value) + (FLAG if pr.value > SUSPICIOUS_SPEEDUP else "")
    return text


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
    provs = [*g.providers, BEST] if HELION in g.impls and g.upstreams else list(g.providers)
    header += [f"Helion vs {p}" for p in provs] if HELION in g.impls else []
    body, speeds = [], []
    for label, p in zip(g.labels, g.points):
        cells = [label, p.dtype, p.regime]
        for impl in g.impls:
            cells += list(impl_cell(p.rows.get(impl)))
        sp: list[float | None] = []
        if HELION in g.impls:
            for prov in provs:
                pr = pair(p, prov)
                sp.append(None if pr is None else pr.value)
                text = fmt_speed(pr)
                if prov == BEST and pr is not None and pr.value is not None:
                    text += f" ({pr.provider})"
                cells.append(text)
        body.append(cells)
        speeds.append(sp)
    return header, body, speeds


def n_speed_cols(g: Group) -> int:
    if HELION not in g.impls:
        return 0
    return len(g.providers) + (1 if g.upstreams else 0)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], body: Sequence[Sequence[str]],
             speeds: Sequence[Sequence[float | None]] | None = None) -> str:
    """A markdown table; speedup cells below 1.0 (Helion slower) are bold."""
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(body):
        cells = [_md_escape(c) for c in row]
        if speeds is not None:
            first = len(row) - len(speeds[i])
            for j, v in enumerate(speeds[i]):
                if v is not None and v < 1.0:
                    cells[first + j] = f"**{cells[first + j]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _env_items(meta: dict[str, Any]) -> list[list[str]]:
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
        out.append([k, text])
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


def summary_table(frame: pd.DataFrame, by: Sequence[str]) -> tuple[list[str], list[list[str]],
                                                                     list[list[float | None]]]:
    """vs best upstream per `by`: n shapes, geomean, min, count below 1.0 (the last three are speed cells)."""
    part = frame[frame["provider"] == BEST]
    summ = summarize(part, by)
    header = [*by, "n shapes", "geomean vs best upstream", "min", "below 1.0×"]
    body, speeds = [], []
    for rec in summ.itertuples(index=False):
        d = rec._asdict()
        body.append([str(d[b]) for b in by] + [str(d["n"]), fmt_x(d["geomean"]), fmt_x(d["min"]),
                                                f"{d['below_1']} of {d['n']}"])
        speeds.append([d["geomean"], d["min"], None])
    return header, body, speeds


def headline_markdown(frame: pd.DataFrame) -> str:
    """The README headline: per category, one row per kernel vs the best upstream."""
    part = frame[frame["provider"] == BEST]
    if part.empty:
        return "No shape has both a Helion row and an upstream row that are ok and timed the same way.\n"
    out = []
    for cat, sub in part.groupby("category", sort=True):
        summ = summarize(sub, ["kernel"])
        out += [f"**{cat}**", "", "| kernel | n shapes | geomean vs best upstream | min | share below 1.0× |",
                "|---|---|---|---|---|"]
        for rec in summ.itertuples(index=False):
            out.append(f"| {rec.kernel} | {rec.n} | {fmt_x(rec.geomean)} | {fmt_x(rec.min)} | "
                       f"{100.0 * rec.below_1 / rec.n:.0f} % |")
        out.append("")
    return "\n".join(out)


def compare_table(res: compare.CompareResult) -> tuple[list[str], list[list[str]], list[str]]:
    """The regression table: every row that is not SAME (SAME rows are only counted)."""
    rows = [r for r in res.rows if r.cls != compare.SAME]
    return list(compare.TABLE_HEADER), [compare.table_cells(r) for r in rows], [r.cls for r in rows]


# ------------------------------------------------------------------------------------- substituted steps

#: what an upstream adapter appends to a row's notes when it runs stand-ins (e.g. a PyTorch op) where production
#: calls CUDA ops that cannot load here, timed alone with the harness timer (not timed inside the row itself)
_SUBSTITUTED = re.compile(r"(?:^|;)\s*substituted steps alone:\s*(\d+(?:\.\d+)?)\s*us\s*(?=;|$)")
SUBSTITUTED_TITLE = "Steps substituted in upstream rows (timed alone, not in the row)"


def substituted_us(row: Mapping[str, Any] | None) -> float | None:
    """The `substituted steps alone: <x> us` a row's notes carry, or None (no note, or one that does not parse)."""
    m = _SUBSTITUTED.search(str((row or {}).get("notes") or ""))
    if m is None:
        return None
    v = float(m.group(1))
    return v if math.isfinite(v) else None


@dataclasses.dataclass(frozen=True)
class Substituted:
    """One upstream row whose notes time its substituted steps, paired with Helion at the same shape."""

    label: str
    point: Point
    provider: str
    row_us: float
    sub_us: float
    measured: float  # upstream median / Helion median, as the main table forms it

    @property
    def share(self) -> float:
        """% of the row's median the substituted steps take alone."""
        return 100.0 * self.sub_us / self.row_us

    @property
    def bound(self) -> float | None:
        """Helion vs the provider if the substituted steps took no time: (row - substituted) / Helion; None when
        the steps alone take as long as the whole row (two timings that do not fit together)."""
        if self.sub_us >= self.row_us:
            return None
        return (self.row_us - self.sub_us) / float(self.point.rows[HELION]["median_us"])


def substituted(g: Group) -> tuple[list[Substituted], int]:
    """The group's upstream rows that carry the note, at shapes where they pair with an ok Helion row timed the
    same way (`pair`); and how many rows carry the note but have no such pair (left out)."""
    out, left_out = [], 0
    for label, p in zip(g.labels, g.points):
        for prov in g.upstreams:
            row = p.rows.get(prov)
            sub = substituted_us(row)
            if row is None or sub is None:
                continue
            pr = pair(p, prov) if HELION in g.impls else None
            if pr is None or pr.value is None:
                left_out += 1
                continue
            out.append(Substituted(label=label, point=p, provider=prov, row_us=float(row["median_us"]),
                                   sub_us=sub, measured=pr.value))
    return out, left_out


def substituted_summary(groups: Sequence[Group]) -> list[tuple[str, str, list[Substituted]]]:
    """(kernel, provider, its paired rows over every model and dtype) for each kernel x provider with any."""
    by: dict[tuple[str, str], list[Substituted]] = {}
    for g in groups:
        for s in substituted(g)[0]:
            by.setdefault((g.kernel, s.provider), []).append(s)
    return [(k, prov, subs) for (k, prov), subs in sorted(by.items())]


def substituted_lines(groups: Sequence[Group]) -> list[str]:
    """The headline's one line per kernel x provider: shapes, median and max share, leads that the substituted
    steps could explain away."""
    out = []
    for kernel, prov, subs in substituted_summary(groups):
        shares = sorted(s.share for s in subs)
        mid = len(shares) // 2
        median = shares[mid] if len(shares) % 2 else (shares[mid - 1] + shares[mid]) / 2.0
        leads = [s for s in subs if s.measured >= 1.0]
        flips = sum(1 for s in leads if s.bound is not None and s.bound < 1.0)
        out.append(f"{kernel} vs {prov}: {len(subs)} shape{'s' if len(subs) != 1 else ''}; the substituted steps "
                   f"alone take a median {median:.1f} % (max {shares[-1]:.1f} %) of the {prov} row; Helion leads "
                   f"at {len(leads)} of them and would fall below 1.0× at {flips} of those if the substituted "
                   "steps were free")
    return out


def _left_out_text(n: int) -> str:
    return (f"{n} upstream row{'s' if n != 1 else ''} with the note left out: not ok, no ok Helion row at the "
            "shape, or timed differently.")


SUBSTITUTED_HEADER = ["shape", "dtype", "provider", "row median µs", "substituted steps alone µs",
                      "share of the row", "Helion vs provider (measured)",
                      "Helion vs provider if the substituted steps were free (bound)"]


def substituted_table(subs: Sequence[Substituted]) -> tuple[list[str], list[list[str]], list[list[float | None]]]:
    """Header, cells and (for colouring) the two speedup cells of each row."""
    body, speeds = [], []
    for s in subs:
        bound = fmt_x(s.bound) if s.bound is not None else "— (steps alone ≥ row)"
        body.append([s.label, s.point.dtype, s.provider, fmt_us(s.row_us), fmt_us(s.sub_us), f"{s.share:.1f} %",
                     fmt_x(s.measured), bound])
        speeds.append([s.measured, s.bound])
    return list(SUBSTITUTED_HEADER), body, speeds


SUBSTITUTED_NOTE = ("These upstream rows run stand-ins (e.g. PyTorch ops) where production calls CUDA ops that "
                    "cannot load here, and their notes give those steps timed alone. The bound divides the row's "
                    "median minus those steps by Helion's: Helion's speedup if the substituted steps took no time "
                    "at all (production's CUDA ops for them take some time too).")


# ----------------------------------------------------------------------------------------------------- plots


#: one plot to draw: (kind, plots function, its arguments); built here, drawn serially or in worker processes
PlotJob = tuple[str, Callable[..., Path], tuple[Any, ...]]


def _group_title(g: Group) -> str:
    title = f"{g.kernel} · {g.model} · {', '.join(g.dtypes)}"
    fixed = " ".join(f"{k}={v}" for k, v in g.fixed.items())
    return f"{title}  ({fixed})" if fixed else title


def _xlabel(g: Group) -> str:
    dims = list(g.varying) + (["dtype"] if len(g.dtypes) > 1 else [])
    return "shape: " + ", ".join(dims) if dims else "shape"


def _plot_jobs(g: Group, out: Path, meta: dict[str, Any]) -> list[PlotJob]:
    jobs: list[PlotJob] = []
    title = _group_title(g)
    xlabel = _xlabel(g)
    colors = {i: plots.impl_color(i, g.impls) for i in g.impls}

    if HELION in g.impls and g.providers:
        series = {prov: [speedup(p, prov) for p in g.points] for prov in g.providers}
        series = {k: v for k, v in series.items() if any(s is not None for s in v)}
        if series:
            jobs.append(("speedup", plots.speedup_plot,
                         (out / f"{g.slug}__speedup.png", f"Helion speedup: {title}", g.labels, series, g.impls,
                          xlabel)))

    token_key = g.token_key
    if token_key and len({p.tokens for p in g.points if p.tokens is not None}) >= 2:
        lines: dict[str, list[tuple[float, float, float | None, float | None]]] = {}
        line_colors: dict[str, str] = {}
        for p in g.points:
            if p.tokens is None:
                continue
            rest = " ".join(f"{k}={v}" for k, v in p.params.items() if k != token_key and k not in g.fixed)
            if len(g.dtypes) > 1:
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
    pct = {i: [roofline_pct(p.rows[i], p.dtype, ceilings) if i in p.rows else (None, None) for p in g.points]
           for i in g.impls}
    bw = {i: [v[0] for v in vals] for i, vals in pct.items()}
    bw = {k: v for k, v in bw.items() if any(x is not None for x in v)} or None
    cp = {i: [v[1] for v in vals] for i, vals in pct.items()}
    cp = {k: v for k, v in cp.items() if any(x is not None for x in v)} or None
    if bw or cp:
        bwc = bandwidth_ceiling(ceilings)
        peaks = sorted({f"{c[0]} {c[1]:g}" for p in g.points if (c := compute_ceiling(p.dtype, ceilings))})
        jobs.append(("roofline", plots.roofline_plot, (
            out / f"{g.slug}__roofline.png", f"% of measured ceilings: {title}", g.labels, bw, cp, g.impls,
            f"% of {bwc[0].replace('_gbps', '')} bandwidth ({bwc[1]:g} GB/s)" if bwc else "",
            f"% of the dtype's matmul peak ({', '.join(peaks)})" if peaks else "", xlabel)))
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
            (out / f"{g.slug}__before_after.png",
             f"{g.kernel} · {g.model} · {', '.join(g.dtypes)}: {res.base.name} → {res.new.name}",
             g.labels, before, after, ratios, band, g.impls, _xlabel(g)))


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers fork from a clean server process, never from this one. Forking a process that imported
    # torch made the plot workers crawl (seen: 3.5 min instead of 30 s for `report --all` under pytest), and
    # forking one that initialised CUDA (the bench calls the report in-process) is unsafe.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def default_jobs() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _draw(jobs: Sequence[tuple[str, PlotJob]], workers: int) -> dict[str, dict[str, Path]]:
    """Draw every plot; Agg rendering is CPU-bound Python, so a big run draws in worker processes."""
    made: dict[str, dict[str, Path]] = {}
    if workers > 1 and len(jobs) >= 8:
        ctx = _pool_context()
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
td.good { background: #d9f2d9 !important; } td.bad { background: #f8d7d7 !important; font-weight: 600; }
td.flag { outline: 2px solid #e0a000; }
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
    # below 1.0 (Helion slower) is always marked; green only beyond the 5 % noise band
    cls = " good" if s >= 1.05 else " bad" if s < 1.0 else ""
    return cls + (" flag" if s > SUSPICIOUS_SPEEDUP else "")


def html_table(header: Sequence[str], body: Sequence[Sequence[str]],
               speeds: Sequence[Sequence[float | None]] | None = None, n_speed_cols: int = 0,
               row_classes: Sequence[str] | None = None) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(body):
        tds = []
        first_speed = len(row) - n_speed_cols
        for j, c in enumerate(row):
            cls = ""
            if speeds is not None and j >= first_speed and j - first_speed < len(speeds[i]):
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


def _img(path: Path, out: Path, alt: str) -> str:
    # a file next to the page, not base64: a report stays a few hundred KB however many plots it has
    return f'<img alt="{_esc(alt)}" src="{_esc(path.relative_to(out).as_posix())}">'


# ---------------------------------------------------------------------------------------------------- report


@dataclasses.dataclass
class ReportFiles:
    markdown: Path
    html: Path
    plots: list[Path]


class ReportError(Exception):
    """A report that cannot be built as asked: one line, exit 2, nothing written."""


def _relpath(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def recorded_against(run: Path, meta: Mapping[str, Any]) -> Path | None:
    """The --against base the run's report was built with (metadata `report_against`), or None."""
    rec = meta.get("report_against")
    if not rec:
        return None
    base = (Path(run) / str(rec)).resolve()
    if not results.is_run_dir(base):
        raise ReportError(f"{Path(run) / 'metadata.json'}: its report was built against {rec}, which is not a run "
                          "folder here: restore it, or rebuild with --against BASE or --no-against")
    return base


def build_report(run: Path, out: Path | None = None, against: Path | None = None, threshold: float = 0.05,
                 alpha: float = 0.01, jobs: int | None = None, allow_incomplete: bool = False,
                 use_recorded: bool = True, allow_env_mismatch: bool = False) -> ReportFiles:
    """Write speedup.md, plots/*.png and report.html for `run` into `out` (default: the run folder).

    Everything is read and checked first: a corrupt or incomplete run (results.RunError), a missing recorded
    base or a base on another GPU raises before a file is touched.  `against` is recorded in the run's
    metadata.json; without it the recorded base (if any) is used, unless use_recorded is False."""
    run = Path(run)
    out = Path(out) if out is not None else run
    rows, _samples, meta = results.read_run(run, allow_incomplete=allow_incomplete)
    record = False
    if against is None and use_recorded:
        against = recorded_against(run, meta)
    elif against is not None:
        record = True
    cmp_res = compare.compare_runs(against, run, threshold=threshold, alpha=alpha, allow_incomplete=allow_incomplete,
                                   allow_env_mismatch=allow_env_mismatch) if against else None
    incomplete = results.completeness(run, meta, len(rows))
    if incomplete:  # the page names the run's own files, never this checkout's absolute path (a rebuild elsewhere
        # must give the same bytes)
        incomplete = incomplete.replace(str(Path(run)) + "/", "").replace(str(Path(run).resolve()) + "/", "")
    groups = build_groups(rows, meta)
    frame = speedup_frame(groups)
    head = headline(groups, frame)

    if record or (against is None and not use_recorded and meta.get("report_against")):
        # the report is reproducible only if the run says what it was built against
        if against is None:
            meta.pop("report_against", None)
        else:
            meta["report_against"] = _relpath(against, run)
        results.write_atomic(run / "metadata.json", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())

    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "plots"
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

    ctx = _Context(run=run, out=out, meta=meta, groups=groups, head=head, frame=frame, group_plots=group_plots,
                   not_ok=not_ok, status_counts=status_counts, cmp_res=cmp_res, incomplete=incomplete)
    md_path = out / "speedup.md"
    _write_if_changed(md_path, _markdown(ctx))
    html_path = out / "report.html"
    _write_if_changed(html_path, _html(ctx))
    return ReportFiles(markdown=md_path, html=html_path, plots=[p for d in group_plots.values() for p in d.values()])


def _write_if_changed(path: Path, text: str) -> None:
    data = text.encode()
    if not path.exists() or path.read_bytes() != data:
        results.write_atomic(path, data)


@dataclasses.dataclass
class _Context:
    run: Path
    out: Path
    meta: dict[str, Any]
    groups: list[Group]
    head: Headline
    frame: pd.DataFrame
    group_plots: dict[str, dict[str, Path]]
    not_ok: list[dict[str, Any]]
    status_counts: dict[str, int]
    cmp_res: compare.CompareResult | None
    incomplete: str | None


def _subtitle(meta: dict[str, Any]) -> str:
    parts = [str(meta[k]) for k in ("gpu", "date") if meta.get(k)]
    if meta.get("git_commit"):
        parts.append(f"commit {str(meta['git_commit'])[:12]}" + (" (dirty)" if meta.get("git_dirty") else ""))
    parts += [f"{k} {meta[k]}" for k in ("helion", "triton", "torch") if meta.get(k)]
    return " · ".join(parts)


_DEFINITION = ("Speedup = upstream median / Helion median (> 1: Helion faster), formed only between two `ok` rows "
               "timed the same way (CUDA graph vs CUDA graph, events vs events); \"vs best upstream\" uses the "
               "fastest ok upstream row of each shape (eager torch is not an upstream). Geomeans use only shapes "
               "where that pair exists; n = number of such shapes. Speedups below 1.0× (Helion slower) are bold / "
               f"red; above {SUSPICIOUS_SPEEDUP:g}× they carry ⚑ (a second look before quoting them). Times are "
               "device times per call in µs (CUDA graph or events, L2 flushed): median (p20–p80); eager = "
               "back-to-back eager calls, host launch overhead included.")


def _flag_sections(ctx: _Context) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(anchor, title, header, body) of the sections that ask for a second look; only the non-empty ones."""
    out = []
    sus = suspicious(ctx.groups)
    if sus:
        out.append(("flag-10x", f"Speedups above {SUSPICIOUS_SPEEDUP:g}× (⚑: check the byte/FLOP counts, the inputs "
                    "and the timing before quoting them)", ["kernel", "model", "shape", "dtype", "vs", "speedup"],
                    [[g.kernel, g.model, compare.shape_label(p.shape), p.dtype, prov, fmt_x(v)]
                     for g, p, prov, v in sus]))
    above = above_ceiling(ctx.groups, ctx.meta)
    if above:
        out.append(("flag-ceiling", "Rows above 100 % of a measured ceiling (a byte or FLOP count bug, or a bad "
                    "ceiling)", ABOVE_HEADER, above))
    nc = not_comparable(ctx.groups)
    if nc:
        out.append(("flag-method", "Pairs without a speedup: timed with different methods",
                    ["kernel", "model", "shape", "dtype", "vs", "why"],
                    [[g.kernel, g.model, compare.shape_label(p.shape), p.dtype, prov, why] for g, p, prov, why in nc]))
    return out


def _summaries(ctx: _Context) -> list[tuple[str, tuple[list[str], list[list[str]], list[list[float | None]]]]]:
    if ctx.frame.empty or not (ctx.frame["provider"] == BEST).any():
        return []
    return [("per category, regime and dtype", summary_table(ctx.frame, ["category", "regime", "dtype"])),
            ("per kernel, regime and dtype", summary_table(ctx.frame, ["kernel", "regime", "dtype"])),
            ("per category", summary_table(ctx.frame, ["category"]))]


def _markdown(ctx: _Context) -> str:
    run, out, meta = ctx.run, ctx.out, ctx.meta
    md = [f"# Helion vs upstream: {run.name}", "", _subtitle(meta), ""]
    if ctx.incomplete:
        md += [f"> **INCOMPLETE RUN:** {ctx.incomplete}", ""]
    md += [_DEFINITION, "",
           "Rows: " + ", ".join(f"{n} {s}" for s, n in sorted(ctx.status_counts.items())), "", "## Headline", ""]
    if not ctx.head.empty:
        h, b, s = headline_table(ctx.head)
        md += [md_table(h, b, s), ""]
    else:
        md += ["No shape has both a Helion row and an upstream row that are ok.", ""]
    sub_lines = substituted_lines(ctx.groups)
    if sub_lines:
        md += [f"**{SUBSTITUTED_TITLE}**, per kernel and upstream over every model and dtype (see the kernel "
               "sections):", ""] + [f"- {line}" for line in sub_lines] + [""]
    for title, (h, b, s) in _summaries(ctx):
        md += [f"### vs best upstream, {title}", "", md_table(h, b, s), ""]
    for _anchor, title, h, b in _flag_sections(ctx):
        md += [f"## {title}", "", md_table(h, b), ""]

    cmp_res = ctx.cmp_res
    if cmp_res is not None:
        md += [f"## Regressions vs {cmp_res.base.name}", ""]
        for w in cmp_res.warnings:
            md += ["> **WARNING:** " + w.replace("\n", "  \n> "), ""]
        md += ["Classes: " + ", ".join(f"{n} {c}" for c, n in cmp_res.counts().items())
               + f" (threshold {cmp_res.threshold:g}, alpha {cmp_res.alpha:g}; SAME rows not listed).", ""]
        h, b, _ = compare_table(cmp_res)
        md += [md_table(h, b) if b else "Every row is SAME.", ""]

    md += ["## Kernels", ""]
    for g in ctx.groups:
        md += [f"### {g.category} / {g.kernel} · {g.model}", ""]
        if (line := untimed_line(g)) is not None:
            md += [line, ""]
            continue
        if g.fixed:
            md += ["Fixed dims: " + ", ".join(f"{k}={v}" for k, v in g.fixed.items()), ""]
        gm = group_geomeans(g) if HELION in g.impls else {}
        if gm:
            md += ["Geomean: " + ", ".join(f"Helion vs {p} {fmt_x(v)} (n={n})" for p, (v, n) in gm.items()), ""]
        h, b, s = shape_table(g)
        md += [md_table(h, b, s), ""]
        subs, left_out = substituted(g)
        if subs:  # rows with the note but no pair alone (e.g. a check run, untimed) make no section
            h, b, s = substituted_table(subs)
            md += [f"#### {SUBSTITUTED_TITLE}", "", SUBSTITUTED_NOTE, "", md_table(h, b, s), ""]
            if left_out:
                md += [_left_out_text(left_out), ""]
        for kind, path in ctx.group_plots.get(g.slug, {}).items():
            md += [f"![{kind}]({path.relative_to(out).as_posix()})", ""]

    md += ["## Rows that are not ok", ""]
    if ctx.not_ok:
        md += [md_table(["kernel", "impl", "model", "shape", "dtype", "status", "error"],
                        [[r["kernel"], r["impl"], r["model"], compare.shape_label(str(r["shape"])), r["dtype"],
                          r["status"], _one_line(r.get("error"), 300)] for r in ctx.not_ok]), ""]
    else:
        md += ["None.", ""]
    md += ["## Environment", "", md_table(["key", "value"], _env_items(meta)), ""]
    return "\n".join(md)


def untimed_line(g: Group) -> str | None:
    """For a group none of whose rows has a time (a correctness-only run: `check`, `check --shapes`; or a bench
    group with no ok row), one line of row counts by provider and status in place of a shape table of empty time
    cells (the rows that are not ok are listed at the end of the report); None otherwise."""
    rows = [r for p in g.points for r in p.rows.values()]
    if any(r.get("median_us") is not None or r.get("eager_us") is not None for r in rows):
        return None
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        counts[(str(r["impl"]), str(r["status"]))] = counts.get((str(r["impl"]), str(r["status"])), 0) + 1
    return (f"{len(g.points)} shapes, none timed: "
            + ", ".join(f"{impl} {status} {n}" for (impl, status), n in sorted(counts.items())))


def _html(ctx: _Context) -> str:
    run, meta, groups, cmp_res = ctx.run, ctx.meta, ctx.groups, ctx.cmp_res
    title = f"Helion vs upstream: {run.name}"
    body = [f"<h1>{_esc(title)}</h1>", f'<p class="sub">{_esc(_subtitle(meta))}</p>']
    if ctx.incomplete:
        body.append(f'<div class="warn">INCOMPLETE RUN: {_esc(ctx.incomplete)}</div>')
    body += [f"<p>{_esc(_DEFINITION)}</p>",
             "<p>Rows: " + _esc(", ".join(f"{n} {s}" for s, n in sorted(ctx.status_counts.items()))) + "</p>"]
    flags = _flag_sections(ctx)

    nav = ['<li><a href="#headline">Headline</a></li>']
    nav += [f'<li><a href="#{a}">{_esc(t.split(" (")[0])}</a></li>' for a, t, _h, _b in flags]
    if cmp_res is not None:
        nav.append('<li><a href="#regressions">Regressions</a></li>')
    nav += [f'<li><a href="#k-{_esc(g.slug)}">{_esc(g.kernel)} · {_esc(g.model)}</a></li>' for g in groups]
    nav += ['<li><a href="#not-ok">Rows that are not ok</a></li>', '<li><a href="#env">Environment</a></li>']
    body.append("<nav><ul>" + "".join(nav) + "</ul></nav>")

    body.append('<h2 id="headline">Headline: geomean speedup of Helion per category and model</h2>')
    if not ctx.head.empty:
        h, b, s = headline_table(ctx.head)
        body.append(html_table(h, b, s, n_speed_cols=len(ctx.head.providers)))
    else:
        body.append("<p>No shape has both a Helion row and an upstream row that are ok.</p>")
    sub_lines = substituted_lines(ctx.groups)
    if sub_lines:
        body.append(f"<p><b>{_esc(SUBSTITUTED_TITLE)}</b>, per kernel and upstream over every model and dtype (see "
                    "the kernel sections):</p>")
        body.append("<ul>" + "".join(f"<li>{_esc(line)}</li>" for line in sub_lines) + "</ul>")
    for stitle, (h, b, s) in _summaries(ctx):
        body.append(f"<h3>vs best upstream, {_esc(stitle)}</h3>")
        body.append(html_table(h, b, s, n_speed_cols=3))
    for anchor, ftitle, h, b in flags:
        body.append(f'<h2 id="{anchor}">{_esc(ftitle)}</h2>')
        body.append(html_table(h, b))

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
        if (line := untimed_line(g)) is not None:
            body.append(f"<p>{_esc(line)}</p>")
            continue
        if g.fixed:
            body.append("<p>Fixed dims: <code>" + _esc(", ".join(f"{k}={v}" for k, v in g.fixed.items()))
                        + "</code></p>")
        gm = group_geomeans(g) if HELION in g.impls else {}
        if gm:
            body.append("<p>Geomean: " + _esc(", ".join(f"Helion vs {p} {fmt_x(v)} (n={n})"
                                                        for p, (v, n) in gm.items())) + "</p>")
        h, b, s = shape_table(g)
        body.append(html_table(h, b, s, n_speed_cols=n_speed_cols(g)))
        subs, left_out = substituted(g)
        if subs:
            h, b, s = substituted_table(subs)
            body += [f"<h4>{_esc(SUBSTITUTED_TITLE)}</h4>", f"<p>{_esc(SUBSTITUTED_NOTE)}</p>",
                     html_table(h, b, s, n_speed_cols=2)]
            if left_out:
                body.append(f"<p>{_esc(_left_out_text(left_out))}</p>")
        imgs = [_img(p, ctx.out, f"{kind}: {g.kernel} {g.model}")
                for kind, p in ctx.group_plots.get(g.slug, {}).items()]
        if imgs:
            body.append('<div class="plots">' + "\n".join(imgs) + "</div>")

    body.append('<h2 id="not-ok">Rows that are not ok</h2>')
    if ctx.not_ok:
        body.append(html_table(["kernel", "impl", "model", "shape", "dtype", "status", "error"],
                               [[str(r["kernel"]), str(r["impl"]), str(r["model"]),
                                 compare.shape_label(str(r["shape"])), str(r["dtype"]), str(r["status"]),
                                 _one_line(r.get("error"), 500)] for r in ctx.not_ok]))
    else:
        body.append("<p>None.</p>")
    body.append('<h2 id="env">Environment</h2>')
    body.append(html_table(["key", "value"], _env_items(meta)))

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------------------- cli


def _row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(row.get(k, "")) for k in ("kernel", "impl", "model", "shape", "dtype"))


def newest_first(metas: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of runs (by their metadata) newest first: by the recorded start, ties: the later one given."""
    return sorted(range(len(metas)), key=lambda i: (str(metas[i].get("date", "")), i), reverse=True)


def _headline(runs: Sequence[Path], allow_incomplete: bool, current_port: bool = False) -> str:
    """Rows of several runs, each (kernel, impl, model, shape, dtype) taken from the newest run measuring it (by
    the runs' recorded start, ties: the later one given), so a re-measured port replaces its older rows whatever
    the order the runs are named in.  current_port: Helion rows measured on an older port (the port's file has
    commits since the run's, or the row did not run the config this checkout ships for it: `make coverage`'s
    "on an older port") are left out, so their shapes have no pair; a closing line counts them."""
    from harness import coverage  # coverage builds on this module

    loaded = [results.read_run(run, allow_incomplete=allow_incomplete) for run in runs]
    order = newest_first([meta for _r, _s, meta in loaded])
    seen: set[tuple[str, ...]] = set()
    groups: list[Group] = []
    dropped: dict[str, int] = {}
    for i in order:
        rows, _s, meta = loaded[i]
        fresh = [r for r in rows if _row_key(r) not in seen]
        seen.update(_row_key(r) for r in rows)
        if current_port:
            gpu = str(meta.get("gpu_slug") or results.gpu_slug(str(meta.get("gpu") or "")))
            commit = meta.get("git_commit") or None
            keep = []
            for r in fresh:
                key = coverage.plan_key(r)
                if r.get("impl") == HELION and coverage.row_stale(key, r, commit, gpu):
                    dropped[key[0]] = dropped.get(key[0], 0) + 1
                else:
                    keep.append(r)
            fresh = keep
        groups += build_groups(fresh, meta)
    out = headline_markdown(speedup_frame(groups))
    if dropped:
        out += ("Left out, measured on an older port: " + ", ".join(f"{k} {n}" for k, n in sorted(dropped.items()))
                + " Helion rows.\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness report", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, nargs="*", help="run folder (results/<gpu>/<run-id>); several with --headline")
    ap.add_argument("--all", action="store_true", help="rebuild the report of every run under results/")
    ap.add_argument("--headline", action="store_true", help="print, per category, a markdown table of each kernel "
                    "vs the best upstream (n shapes, geomean, min, share below 1.0x) over the given runs (a row "
                    "measured by several: the newest run's); writes nothing")
    ap.add_argument("--current-port", action="store_true", help="with --headline: leave out Helion rows measured on "
                    "an older port (the port or its shipped config changed since the run)")
    ap.add_argument("--against", type=Path, metavar="BASE", help="baseline run: add the regression table and "
                    "before/after plots (recorded in the run, so a rebuild reproduces it)")
    ap.add_argument("--no-against", action="store_true", help="drop a recorded --against base")
    ap.add_argument("--allow-env-mismatch", action="store_true", help="with --against: accept a base from another "
                    "GPU")
    ap.add_argument("--allow-incomplete", action="store_true", help="report the rows of a stopped run (marked "
                    "INCOMPLETE)")
    ap.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: the run folder)")
    ap.add_argument("--threshold", type=float, default=0.05, help="compare threshold with --against (default 0.05)")
    ap.add_argument("--alpha", type=float, default=0.01, help="compare significance with --against (default 0.01)")
    ap.add_argument("--jobs", type=int, default=None, help="processes drawing plots (default: CPUs, at most 8)")
    ap.add_argument("--results-dir", type=Path, default=results.RESULTS_DIR, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    try:
        if args.headline:
            if not args.run:
                ap.error("--headline needs one or more RUN folders")
            print(_headline(args.run, args.allow_incomplete, args.current_port), end="")
            return 0
        if args.all:
            if args.run or args.out or args.against or args.no_against:
                ap.error("--all takes no RUN, --out, --against or --no-against")
            return _all(args)
        if len(args.run) != 1:
            ap.error("give one RUN folder, or --all, or --headline RUN...")
        run = args.run[0]
        for p in (run, args.against):
            if p is not None and not results.is_run_dir(p):
                ap.error(f"{p}: no results.csv(.gz) (is this a run folder?)")
        if args.against and args.no_against:
            ap.error("--against and --no-against exclude each other")
        files = build_report(run, out=args.out, against=args.against, threshold=args.threshold, alpha=args.alpha,
                             jobs=args.jobs, allow_incomplete=args.allow_incomplete, use_recorded=not args.no_against,
                             allow_env_mismatch=args.allow_env_mismatch)
    except (results.RunError, ReportError, compare.EnvMismatch) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(files.markdown)
    print(files.html)
    return 0


def _all(args: argparse.Namespace) -> int:
    runs = results.list_runs(args.results_dir)
    if not runs:
        print(f"no runs under {args.results_dir}")
        return 0
    failed = 0
    for run in runs:
        meta = results.read_metadata(run)
        # a committed run that a sweep's time limit stopped is history, not an accident: it is rebuilt under its
        # INCOMPLETE banner (a corrupt file is still refused)
        stopped = meta.get("planned_rows") is not None and not isinstance(meta.get("complete"), dict)
        try:
            files = build_report(run, jobs=args.jobs, allow_incomplete=args.allow_incomplete or stopped)
        except (results.RunError, ReportError, compare.EnvMismatch) as e:
            # one broken run must not hide the reports of the others; it is left exactly as it was
            failed += 1
            print(f"error: {e}", file=sys.stderr)
        else:
            print(files.html)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
