"""Compare two runs row by row and decide, per row, whether the new run is slower, faster or the same.

    harness compare BASE_RUN NEW_RUN [--threshold 0.05] [--alpha 0.01]

Rows are joined on `results.ROW_KEY`.  For a row that is `ok` in both runs the decision uses the per-repetition
samples (samples.jsonl) of both runs:

* ratio      = median(new) / median(base)   (> 1: the new run is slower)
* CI         = a (1 - alpha) percentile-bootstrap confidence interval of that ratio (scipy.stats.bootstrap,
               deterministic: the generator is seeded from the row key)
* p          = two-sided Mann-Whitney U p-value of the two sample sets (scipy.stats.mannwhitneyu)
* band       = [1 / (1 + threshold), 1 + threshold]: changes inside it are too small to matter

SLOWER  CI entirely above the band and p < alpha (significant and at least `threshold` slower)
FASTER  CI entirely below the band and p < alpha
SAME    CI entirely inside the band
NOISY   anything else: the CI straddles a band edge, so the spread is too wide to decide

Rows without samples fall back to the CSV's p20/p80: the ratio's range is [new p20 / base p80, new p80 / base p20]
(the inter-quantile ranges must separate), and the row says so.  Status changes: NOW-INCORRECT (ok -> any
non-ok status), NOW-OK (non-ok -> ok), STILL-NOT-OK (non-ok in both), NEW / GONE (row in one run only).
Exit status 1 when any row is SLOWER or NOW-INCORRECT.

Refused with one line and exit 2, before any row is compared: a corrupt or incomplete run (a truncated
results.csv would otherwise read as hundreds of GONE rows and pass), and two runs on different GPUs (their
timings do not compare; `--allow-env-mismatch` overrides).  Other environment differences (driver, torch,
upstream versions) are a warning.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import math
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from harness import results

SAME = "SAME"
FASTER = "FASTER"
SLOWER = "SLOWER"
NOISY = "NOISY"
NEW = "NEW"
GONE = "GONE"
NOW_INCORRECT = "NOW-INCORRECT"
NOW_OK = "NOW-OK"
STILL_NOT_OK = "STILL-NOT-OK"

#: classes that fail the comparison (exit status 1)
FAILING = (SLOWER, NOW_INCORRECT)

#: table order: regressions first, then what needs a look, then the rest
CLASS_ORDER = (NOW_INCORRECT, SLOWER, NOISY, FASTER, NOW_OK, NEW, GONE, STILL_NOT_OK, SAME)

#: metadata keys whose difference makes timings hard to compare (plus every upstream's version)
ENV_KEYS = ("gpu", "driver", "cuda", "torch", "triton", "helion")
#: keys whose difference makes timings not comparable at all: refused unless allow_env_mismatch
HARD_ENV_KEYS = ("gpu",)


class EnvMismatch(Exception):
    """The two runs ran on different GPUs: one line, exit 2."""

N_RESAMPLES = 2000
#: fewer samples than this on either side and the bootstrap is meaningless: use the p20/p80 fallback
MIN_SAMPLES = 5

# scipy >= 1.15 spells the generator argument `rng`; older releases only know `random_state`
_BOOTSTRAP_RNG_ARG = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


@dataclasses.dataclass
class CompareRow:
    key: tuple[str, ...]  # ROW_KEY values
    category: str
    cls: str  # one of CLASS_ORDER
    base_status: str | None
    new_status: str | None
    base_median_us: float | None = None
    new_median_us: float | None = None
    ratio: float | None = None  # new / base median (> 1: slower)
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    method: str = ""  # samples | p20-p80 | point | ""
    note: str = ""

    def field(self, name: str) -> str:
        return self.key[results.ROW_KEY.index(name)]

    @property
    def failing(self) -> bool:
        return self.cls in FAILING


@dataclasses.dataclass
class CompareResult:
    base: Path
    new: Path
    threshold: float
    alpha: float
    rows: list[CompareRow]
    warnings: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if any(r.failing for r in self.rows) else 0

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in CLASS_ORDER}
        for r in self.rows:
            out[r.cls] += 1
        return {c: n for c, n in out.items() if n}

    def by_key(self) -> dict[tuple[str, ...], CompareRow]:
        return {r.key: r for r in self.rows}


def canonical_key(key: tuple[str, ...]) -> tuple[str, ...]:
    """The same shape written two ways (JSON with other spacing, or a Python dict repr) joins as one key."""
    i = results.ROW_KEY.index("shape")
    text = key[i]
    parsed: Any = None
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return key
    if not isinstance(parsed, dict):
        return key
    shape = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
    return key[:i] + (shape,) + key[i + 1 :]


def _median_ratio(new: np.ndarray, base: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(new, axis=axis) / np.median(base, axis=axis)


def _seed(key: tuple[str, ...]) -> int:
    # stable across processes and row order (hash() is salted per process)
    return zlib.crc32("\x1f".join(key).encode())


def _classify_interval(lo: float, hi: float, threshold: float, significant: bool) -> str:
    upper, lower = 1.0 + threshold, 1.0 / (1.0 + threshold)
    if lo > upper and significant:
        return SLOWER
    if hi < lower and significant:
        return FASTER
    if lo >= lower and hi <= upper:
        return SAME
    return NOISY


def _compare_timing(
    key: tuple[str, ...],
    base_row: dict[str, Any],
    new_row: dict[str, Any],
    base_samples: list[float] | None,
    new_samples: list[float] | None,
    threshold: float,
    alpha: float,
) -> CompareRow:
    row = CompareRow(key=key, category=str(new_row.get("category") or ""), cls=NOISY,
                     base_status="ok", new_status="ok",
                     base_median_us=base_row.get("median_us"), new_median_us=new_row.get("median_us"))
    if (base_samples is not None and new_samples is not None
            and len(base_samples) >= MIN_SAMPLES and len(new_samples) >= MIN_SAMPLES):
        b = np.asarray(base_samples, dtype=np.float64)
        n = np.asarray(new_samples, dtype=np.float64)
        row.base_median_us, row.new_median_us = float(np.median(b)), float(np.median(n))
        row.ratio = row.new_median_us / row.base_median_us
        row.p_value = float(stats.mannwhitneyu(n, b, alternative="two-sided").pvalue)
        if np.ptp(b) == 0 and np.ptp(n) == 0:
            # constant samples (a clock-resolution floor): the bootstrap has nothing to resample
            row.ci_low = row.ci_high = row.ratio
        else:
            ci = stats.bootstrap(
                (n, b), _median_ratio, n_resamples=N_RESAMPLES, vectorized=True, paired=False, axis=-1,
                confidence_level=1.0 - alpha, method="percentile",
                **{_BOOTSTRAP_RNG_ARG: np.random.default_rng(_seed(key))},
            ).confidence_interval
            row.ci_low, row.ci_high = float(ci.low), float(ci.high)
        row.method = "samples"
        row.cls = _classify_interval(row.ci_low, row.ci_high, threshold, significant=row.p_value < alpha)
        return row

    missing = "no samples" if not base_samples or not new_samples else "too few samples"
    bm, nm = row.base_median_us, row.new_median_us
    if bm is None or nm is None or bm <= 0:
        row.cls = NOISY
        row.note = f"{missing} and no median in the CSV: cannot compare"
        return row
    row.ratio = nm / bm
    b20, b80, n20, n80 = (base_row.get("p20_us"), base_row.get("p80_us"), new_row.get("p20_us"),
                          new_row.get("p80_us"))
    if None not in (b20, b80, n20, n80) and b20 > 0 and b80 > 0:
        row.ci_low, row.ci_high = n20 / b80, n80 / b20
        row.method = "p20-p80"
        row.note = f"{missing}: decided on the CSV p20/p80 ranges"
        row.cls = _classify_interval(row.ci_low, row.ci_high, threshold, significant=True)
    else:
        row.method = "point"
        row.note = f"{missing} and no p20/p80: decided on the medians alone"
        row.cls = _classify_interval(row.ratio, row.ratio, threshold, significant=True)
    return row


def _flatten_env(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: meta.get(k) for k in ENV_KEYS}
    upstreams = meta.get("upstreams") or {}
    if isinstance(upstreams, dict):
        for name, version in upstreams.items():
            out[f"upstreams.{name}"] = version
    return out


def env_differences(base_meta: dict[str, Any], new_meta: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, base value, new value) for each environment key that differs; missing in both is not a difference."""
    b, n = _flatten_env(base_meta), _flatten_env(new_meta)
    diffs = []
    for k in sorted(set(b) | set(n), key=lambda k: (k.startswith("upstreams."), k)):
        bv, nv = b.get(k), n.get(k)
        if bv != nv:
            diffs.append((k, bv, nv))
    return diffs


def _sort_key(r: CompareRow) -> tuple[Any, ...]:
    # largest slowdowns first inside each class
    ratio = r.ratio if r.ratio is not None and math.isfinite(r.ratio) else 1.0
    return (CLASS_ORDER.index(r.cls), -ratio, r.key)


def compare_runs(base: Path, new: Path, threshold: float = 0.05, alpha: float = 0.01,
                 allow_env_mismatch: bool = False, allow_incomplete: bool = False) -> CompareResult:
    """Classify every row of `new` against `base` (see the module docstring).  Raises results.RunError for a
    corrupt or incomplete run and EnvMismatch for runs on different GPUs (unless allow_env_mismatch)."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    base, new = Path(base), Path(new)
    base_rows, base_samples, base_meta = results.read_run(base, allow_incomplete=allow_incomplete)
    new_rows, new_samples, new_meta = results.read_run(new, allow_incomplete=allow_incomplete)
    hard = [(k, bv, nv) for k, bv, nv in env_differences(base_meta, new_meta) if k in HARD_ENV_KEYS]
    if hard and not allow_env_mismatch:
        k, bv, nv = hard[0]
        raise EnvMismatch(f"{base.name} ran on {k} {bv or '<missing>'} but {new.name} on {nv or '<missing>'}: "
                          "timings across GPUs do not compare (compare against this GPU's results/<gpu>/BASELINE, "
                          "or pass --allow-env-mismatch)")
    b_rows = {canonical_key(results.row_key(r)): r for r in base_rows}
    n_rows = {canonical_key(results.row_key(r)): r for r in new_rows}
    b_samp = {canonical_key(k): v for k, v in base_samples.items()}
    n_samp = {canonical_key(k): v for k, v in new_samples.items()}

    warnings = []
    diffs = env_differences(base_meta, new_meta)
    if diffs:
        lines = [f"  {k}: {bv if bv is not None else '<missing>'} -> {nv if nv is not None else '<missing>'}"
                 for k, bv, nv in diffs]
        warnings.append("the two runs differ in environment; timing changes may come from it, not the code:\n"
                        + "\n".join(lines))

    # a run restricted to some kernels / models / impls / dtypes did not lose the base rows outside it: those
    # are left out rather than reported GONE (e.g. a bf16-only run against a bf16 + fp8 baseline)
    sel = new_meta.get("selection") or {}
    wanted = {f: set(sel[s]) for f, s in (("kernel", "kernels"), ("model", "models"), ("impl", "impls"),
                                          ("dtype", "dtypes")) if sel.get(s)}
    b_rows = {k: r for k, r in b_rows.items() if all(str(r.get(f)) in v for f, v in wanted.items())}

    rows: list[CompareRow] = []
    for key in sorted(set(b_rows) | set(n_rows)):
        br, nr = b_rows.get(key), n_rows.get(key)
        category = str((nr or br or {}).get("category") or "")
        if br is None:
            rows.append(CompareRow(key=key, category=category, cls=NEW, base_status=None, new_status=nr["status"],
                                   new_median_us=nr.get("median_us"), note=_err(nr)))
            continue
        if nr is None:
            rows.append(CompareRow(key=key, category=category, cls=GONE, base_status=br["status"], new_status=None,
                                   base_median_us=br.get("median_us")))
            continue
        bs, ns = br["status"], nr["status"]
        if bs == "ok" and ns != "ok":
            rows.append(CompareRow(key=key, category=category, cls=NOW_INCORRECT, base_status=bs, new_status=ns,
                                   base_median_us=br.get("median_us"), note=f"ok -> {ns}: {_err(nr)}"))
        elif bs != "ok" and ns == "ok":
            rows.append(CompareRow(key=key, category=category, cls=NOW_OK, base_status=bs, new_status=ns,
                                   new_median_us=nr.get("median_us"), note=f"{bs} -> ok"))
        elif bs != "ok":
            note = f"{bs} -> {ns}: {_err(nr)}" if bs != ns else f"still {ns}: {_err(nr)}"
            rows.append(CompareRow(key=key, category=category, cls=STILL_NOT_OK, base_status=bs, new_status=ns,
                                   note=note))
        else:
            rows.append(_compare_timing(key, br, nr, b_samp.get(key), n_samp.get(key), threshold, alpha))
    rows.sort(key=_sort_key)
    return CompareResult(base=base, new=new, threshold=threshold, alpha=alpha, rows=rows, warnings=warnings)


def _err(row: dict[str, Any]) -> str:
    return str(row.get("error") or "").strip()


# ----------------------------------------------------------------------------------------------- formatting


def shape_label(shape: str) -> str:
    """'{"K":4096,"M":1}' -> 'K=4096 M=1' (anything that is not a JSON object is shown as is)."""
    try:
        parsed = json.loads(shape)
    except ValueError:
        return shape
    if not isinstance(parsed, dict):
        return shape
    return " ".join(f"{k}={v}" for k, v in parsed.items())


def _us(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _ci(r: CompareRow) -> str:
    return "" if r.ci_low is None else f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"


def _p(x: float | None) -> str:
    return "" if x is None else f"{x:.1e}"


TABLE_HEADER = ("class", "kernel", "impl", "model", "dtype", "shape", "base us", "new us", "new/base", "CI", "p",
                "note")


def table_cells(r: CompareRow) -> list[str]:
    return [r.cls, r.field("kernel"), r.field("impl"), r.field("model"), r.field("dtype"),
            shape_label(r.field("shape")), _us(r.base_median_us), _us(r.new_median_us), _ratio(r.ratio), _ci(r),
            _p(r.p_value), r.note]


def format_text(res: CompareResult, include_same: bool = True) -> str:
    out = []
    for w in res.warnings:
        bar = "!" * 100
        out += [bar, "WARNING: " + w, bar, ""]
    out.append(f"base: {res.base}")
    out.append(f"new:  {res.new}")
    out.append(f"threshold {res.threshold:g} (band [{1 / (1 + res.threshold):.3f}, {1 + res.threshold:.3f}]), "
               f"alpha {res.alpha:g}, {N_RESAMPLES} bootstrap resamples")
    out.append("")
    rows = [r for r in res.rows if include_same or r.cls != SAME]
    table = [list(TABLE_HEADER)] + [table_cells(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(TABLE_HEADER) - 1)]
    for row in table:
        out.append(("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1]).rstrip())
    out.append("")
    out.append("summary: " + ", ".join(f"{n} {c}" for c, n in res.counts().items()))
    fallback = sum(1 for r in res.rows if r.method in ("p20-p80", "point"))
    if fallback:
        out.append(f"{fallback} row(s) had no usable samples and were decided on the CSV (see their notes)")
    if res.warnings:
        out.append("WARNING: the environments differ (see the top): read timing changes with care")
    out.append(f"result: {'FAIL' if res.exit_code else 'PASS'} (exit {res.exit_code})")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness compare", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path, help="baseline run folder (results/<gpu>/<run-id>)")
    ap.add_argument("new", type=Path, help="new run folder")
    ap.add_argument("--threshold", type=float, default=0.05,
                    help="smallest relative change that counts as slower/faster (default 0.05 = 5%%)")
    ap.add_argument("--alpha", type=float, default=0.01,
                    help="significance level; the bootstrap CI is (1 - alpha) (default 0.01)")
    ap.add_argument("--hide-same", action="store_true", help="leave SAME rows out of the table")
    ap.add_argument("--allow-env-mismatch", action="store_true",
                    help="compare runs from different GPUs (refused otherwise: their timings do not compare)")
    ap.add_argument("--allow-incomplete", action="store_true",
                    help="compare the finished rows of a stopped run (refused otherwise)")
    args = ap.parse_args(argv)
    for p in (args.base, args.new):
        if not results.is_run_dir(p):
            ap.error(f"{p}: no results.csv(.gz) (is this a run folder?)")
    try:
        res = compare_runs(args.base, args.new, threshold=args.threshold, alpha=args.alpha,
                           allow_env_mismatch=args.allow_env_mismatch, allow_incomplete=args.allow_incomplete)
    except (results.RunError, EnvMismatch) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_text(res, include_same=not args.hide_same))
    return res.exit_code


if __name__ == "__main__":
    sys.exit(main())
