"""PNG plots for reports: plain data in, one file out; no knowledge of the results format.

Figures are built with `matplotlib.figure.Figure` on the Agg canvas (no pyplot, no global figure state), so
reports render on machines without a display and many plots do not accumulate memory.

Files are small and byte-for-byte reproducible: the Agg image is reduced to a 64-colour palette (plots are flat
colours, so nothing visible is lost and the file is ~4x smaller) and saved without a software/date chunk, so
`make report` on a clean checkout rewrites every committed plot identically.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

#: (value, low, high); low/high may be None when no spread is known
Interval = tuple[float, float | None, float | None]

_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e")
_FIXED = {"helion": "#d62728", "torch": "#7f7f7f"}
DPI = 90
#: palette size of the saved PNGs: more than the colours a plot uses (lines, bars, anti-aliased edges)
PALETTE_COLORS = 64
#: plain-language meaning of the error bars, printed under each plot that has them
SPEEDUP_BARS = "error bars: upstream p20 / Helion p80 to upstream p80 / Helion p20"


def impl_color(impl: str, order: Sequence[str]) -> str:
    """The same impl gets the same colour in every plot of a report (Helion is always red)."""
    if impl in _FIXED:
        return _FIXED[impl]
    others = [i for i in order if i not in _FIXED]
    idx = others.index(impl) if impl in others else len(others)
    return _PALETTE[idx % len(_PALETTE)]


def _figure(n_x: int, height: float = 4.0) -> Figure:
    width = min(18.0, max(6.5, 0.55 * n_x + 2.5))
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _title(ax, fig: Figure, text: str) -> None:
    # wrap to the figure width: long fixed-dim lists would otherwise be clipped
    ax.set_title(textwrap.fill(text, width=int(fig.get_figwidth() * 12)), fontsize=9)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    buf.seek(0)
    with Image.open(buf) as im:
        # no dithering: dithered flat colours compress badly and look noisy
        small = im.convert("RGB").quantize(colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT,
                                           dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if not path.exists() or path.read_bytes() != data:  # leave an identical file (and its mtime) alone
        path.write_bytes(data)
    return path


def _xlabel(ax, xlabel: str, note: str) -> None:
    # the note rides in the x label: constrained layout then makes room for it (a figure text would overlap)
    ax.set_xlabel(f"{xlabel}\n{note}", fontsize=8)


def _err(vals: Sequence[Interval | None]) -> tuple[list[float], list[list[float]]]:
    ys, lo, hi = [], [], []
    for v in vals:
        if v is None:
            ys.append(math.nan)
            lo.append(0.0)
            hi.append(0.0)
            continue
        y, a, b = v
        ys.append(y)
        lo.append(max(0.0, y - a) if a is not None else 0.0)
        hi.append(max(0.0, b - y) if b is not None else 0.0)
    return ys, [lo, hi]


def _grouped_bars(ax, labels: Sequence[str], series: Mapping[str, Sequence[Interval | None]],
                  order: Sequence[str], label_prefix: str = "") -> None:
    n = max(1, len(series))
    width = 0.8 / n
    for i, (name, vals) in enumerate(series.items()):
        ys, err = _err(vals)
        has_err = any(e > 0 for side in err for e in side)
        xs = [x - 0.4 + width * (i + 0.5) for x in range(len(labels))]
        ax.bar(xs, ys, width=width, yerr=err if has_err else None, capsize=2, color=impl_color(name, order),
               label=label_prefix + name, error_kw={"elinewidth": 0.8})
    ax.set_xlim(-0.5, len(labels) - 0.5)  # keep empty slots at the ends visible
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center",
                       fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _grouped_points(ax, labels: Sequence[str], series: Mapping[str, Sequence[Interval | None]],
                    order: Sequence[str]) -> None:
    # points, not bars: a ratio near 1 is the interesting part, a bar from 0 would hide it
    n = max(1, len(series))
    step = 0.6 / n
    for i, (name, vals) in enumerate(series.items()):
        ys, err = _err(vals)
        xs = [x - 0.3 + step * (i + 0.5) for x in range(len(labels))]
        ax.errorbar(xs, ys, yerr=err, fmt="o", ms=4, capsize=2, color=impl_color(name, order), label=name)
    ax.set_xlim(-0.5, len(labels) - 0.5)  # keep empty slots at the ends visible
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center",
                       fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def speedup_plot(path: Path, title: str, labels: Sequence[str], series: Mapping[str, Sequence[Interval | None]],
                 order: Sequence[str], xlabel: str = "shape") -> Path:
    """Helion speedup per shape, one bar per upstream provider; the error bar spans the p20/p80-derived range."""
    fig = _figure(len(labels))
    ax = fig.add_subplot()
    ax.axhspan(0, 1.0, color="#f8d7d7", alpha=0.5, lw=0, zorder=0)  # below 1: Helion is slower
    _grouped_bars(ax, labels, series, order, label_prefix="vs ")
    _xlabel(ax, xlabel, SPEEDUP_BARS + "; shaded: below 1.0 (Helion slower)")
    for x in range(len(labels)):
        if all(vals[x] is None for vals in series.values()):
            # say why the slot is empty rather than leave a gap that reads like a zero
            ax.text(x, 0.03, "no ok pair", transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                    va="bottom", fontsize=8, color="#777777")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # headroom for the legend
    ax.set_ylabel("speedup (upstream median / Helion median)")
    _title(ax, fig, title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def latency_plot(path: Path, title: str, xlabel: str,
                 lines: Mapping[str, Sequence[tuple[float, float, float | None, float | None]]],
                 colors: Mapping[str, str]) -> Path:
    """median_us against the token count, one line per impl (and per other varying dims), log-log axes."""
    fig = _figure(8)
    ax = fig.add_subplot()
    styles = ("-", "--", ":", "-.")
    seen: dict[str, int] = {}
    for name, pts in lines.items():
        pts = sorted(pts)
        if not pts:
            continue
        color = colors.get(name, "black")
        style = styles[seen.get(color, 0) % len(styles)]
        seen[color] = seen.get(color, 0) + 1
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        ax.plot(xs, ys, style, marker="o", ms=3, color=color, label=name)
        if all(p[2] is not None and p[3] is not None for p in pts):
            ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median device time (µs), p20–p80 shaded")
    _title(ax, fig, title)
    ax.grid(which="major", alpha=0.3)  # a minor log grid costs more than the rest of the plot
    ax.legend(fontsize=7, ncols=2 if len(lines) > 6 else 1)
    return _save(fig, path)


def roofline_plot(path: Path, title: str, labels: Sequence[str],
                  bandwidth_pct: Mapping[str, Sequence[float | None]] | None,
                  compute_pct: Mapping[str, Sequence[float | None]] | None, order: Sequence[str],
                  bandwidth_label: str, compute_label: str, xlabel: str = "shape") -> Path:
    """Achieved fraction of the measured ceilings per shape and impl (one panel each for bytes and FLOPs)."""
    panels = [(p, lab) for p, lab in ((bandwidth_pct, bandwidth_label), (compute_pct, compute_label)) if p]
    fig = _figure(len(labels), height=3.2 * len(panels) + 0.6)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (pct, label) in zip(axes, panels):
        series = {k: [None if v is None else (v, None, None) for v in vals] for k, vals in pct.items()}
        _grouped_bars(ax, labels, series, order)
        ax.set_ylabel(label, fontsize=8)
        top = max((v for vals in pct.values() for v in vals if v is not None), default=0.0)
        if top > 50.0:  # only when it is near: a 100 % line would squash small bars flat
            ax.axhline(100.0, color="black", lw=0.8, ls="--")
        ax.legend(fontsize=7)
    _xlabel(axes[-1], xlabel, "above 100 %: the row's byte/FLOP count or the ceiling is wrong (flagged in the report)")
    _title(axes[0], fig, title)
    return _save(fig, path)


def before_after_plot(path: Path, title: str, labels: Sequence[str],
                      before: Mapping[str, Sequence[float | None]], after: Mapping[str, Sequence[float | None]],
                      ratios: Mapping[str, Sequence[Interval | None]], band: tuple[float, float],
                      order: Sequence[str], xlabel: str = "shape") -> Path:
    """Top: median before (hollow, dashed) and after (filled) per impl; bottom: new/base ratio with its CI."""
    fig = _figure(len(labels), height=7.0)
    top, bottom = fig.subplots(2, 1, sharex=True)
    xs = list(range(len(labels)))
    for name in order:
        color = impl_color(name, order)
        if name in before:
            top.plot(xs, [math.nan if v is None else v for v in before[name]], "--", marker="o", mfc="none",
                     color=color, label=f"{name} base")
        if name in after:
            top.plot(xs, [math.nan if v is None else v for v in after[name]], "-", marker="o", color=color,
                     label=f"{name} new")
    top.set_yscale("log")
    top.set_ylabel("median (µs)")
    top.grid(alpha=0.3)
    top.legend(fontsize=7, ncols=2)
    _title(top, fig, title)
    bottom.axhspan(band[0], band[1], color="#cccccc", alpha=0.5, lw=0, label="no-change band")
    bottom.axhline(1.0, color="black", lw=0.8)
    _grouped_points(bottom, labels, {k: ratios[k] for k in order if k in ratios}, order)
    bottom.set_ylabel("new / base median (CI)")
    _xlabel(bottom, xlabel, "error bars: bootstrap confidence interval of new / base median (compare's alpha)")
    bottom.legend(fontsize=7)
    return _save(fig, path)
