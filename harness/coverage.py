"""`python -m harness coverage`: how far each Helion port is from "passes the gate at every model shape, and is
timed against the best upstream there", from the committed runs of one GPU (no GPU needed, nothing written).

The plan is every Helion row a full `make bench` would run (`--quick`: the quick subsets), from the specs and
shapes/*.yaml. A planned row is identified across runs by (kernel, model, shape JSON with sorted keys, dtype).
- gated: the newest run measuring the row (bench or `check --shapes`; by metadata date, ties: the later folder)
  has it `ok`. A newer `ok` supersedes an older `incorrect`, and a newer failure an older `ok`.
- failing: that newest row is `incorrect`, `error` or `timeout` (`unavailable` is neither gated nor failing).
- timed: the row is gated and some run times it against the best upstream there, as the reports do (the timing
  itself counted as on an older port by the same rule as the gate below)
  (`report.pair(point, BEST)`: Helion and the fastest ok upstream row of the same shape in the same run, timed
  the same way); the newest such run gives the speedup (upstream median / Helion median, > 1: Helion faster).
- stale: gated, but the port's file (ports/<category>/<spec>.py) has commits since the commit that run measured
  (git history of this checkout; unknown commits and checkouts without git count as current), or the row did not
  run the config this checkout ships for its bucket on this GPU (ports/configs/<gpu>/: an entry added or re-tuned
  since, or one removed): the row passed on an older version of the port and needs a re-run.
`check` runs of check_cases() measure no model shape, so their rows never match the plan.

The catalog line: specs gated at every planned shape; at some (not all) of them; with a failing newest row; and
of the specs with any timed row, those whose geomean over their timed rows is above 1.0.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import registry, results
from harness.cli import UsageError
from harness.report import BEST, HELION, build_groups, fmt_x, geomean, md_table, pair
from harness.report import newest_first as _newest_first

if TYPE_CHECKING:
    from harness.runner import RowPlan

#: (kernel, model, canonical shape JSON, dtype): one planned Helion row, whatever run measured it
PlanKey = tuple[str, str, str, str]

FAILING = ("incorrect", "error", "timeout")


def canonical_shape(shape: Any) -> str:
    """The shape as results.csv writes it (JSON, sorted keys, compact); text that is not JSON stays as it is."""
    if not isinstance(shape, Mapping):
        try:
            shape = json.loads(str(shape or ""))
        except ValueError:
            return str(shape or "")
    return json.dumps(shape, sort_keys=True, separators=(",", ":"))


def plan_key(row: Mapping[str, Any]) -> PlanKey:
    return (str(row["kernel"]), str(row["model"]), canonical_shape(row["shape"]), str(row["dtype"]))


def planned(quick: bool) -> list[RowPlan]:
    """Every Helion row of a full `make bench` (or `make bench-quick`): all specs over all models, less the rows
    the spec itself rules out (`invalid_reason`, e.g. fp8 block-128 with N = 192: `unavailable` by definition)."""
    from harness.runner import plan_rows
    from harness.shapes import load_all
    from harness.spec import Case

    specs = registry.specs()
    rows = plan_rows(sorted(specs), load_all(), [HELION], None, quick, None)
    return [r for r in rows
            if not specs[r.kernel].invalid_reason(Case(r.model, r.regime, dict(r.params)), r.dtype)]


def ported_specs() -> dict[str, str]:
    """{spec: category} of every spec with a Helion port (including one no model plans a row for)."""
    specs = registry.specs()
    return {k: s.category for k, s in specs.items() if HELION in registry.providers(k)}


# -------------------------------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Run:
    path: Path
    rows: list[dict[str, Any]]
    meta: dict[str, Any]


def read_runs(paths: Iterable[Path]) -> list[Run]:
    """The readable runs among `paths`, stopped ones included; each unreadable folder costs one stderr line."""
    out = []
    for path in paths:
        try:
            meta = results.read_metadata(path)
            rows = results.read_rows(path, allow_incomplete=True)
        except (ValueError, OSError) as e:  # RunError is a ValueError; a folder without results.csv an OSError
            print(f"warning: {path}: skipped ({' '.join(str(e).split())})", file=sys.stderr)
            continue
        out.append(Run(Path(path), rows, meta))
    return out


def newest_first(runs: Sequence[Run]) -> list[Run]:
    """The runs newest first, in the order `report --headline` takes rows in (`report.newest_first`)."""
    return [runs[i] for i in _newest_first([run.meta for run in runs])]


def newest_rows(runs: Sequence[Run]) -> dict[PlanKey, tuple[dict[str, Any], str | None]]:
    """{row: (the Helion row, git commit of its run)} from the newest run measuring it."""
    out: dict[PlanKey, tuple[dict[str, Any], str | None]] = {}
    for run in newest_first(runs):
        commit = run.meta.get("git_commit") or None
        # inside one run the last row of a key wins, as in build_groups
        mine = {plan_key(r): r for r in run.rows if r["impl"] == HELION}
        for k, row in mine.items():
            out.setdefault(k, (row, commit))
    return out


def _shipped_entry(key: PlanKey, gpu: str) -> tuple[str, dict[str, Any]] | None:
    """(bucket key, configs) of the entry this checkout ships for the row on `gpu` (ports/configs/<gpu>/), or
    None when the row runs the port's defaults there."""
    from harness.spec import Case
    from ports import _configs

    kernel, model, shape, dtype = key
    if not _configs.config_path(kernel, gpu).exists():
        return None
    impl = registry.get_impl(kernel, HELION)
    dims = impl.case_dims(Case(model, "", json.loads(shape)))
    configs, source = _configs.lookup(kernel, gpu, dims, dtype, impl.bucket_dim())
    if configs is None:
        return None
    return _configs.bucket_key(dims, dtype, impl.bucket_dim()), configs


def config_changed(key: PlanKey, row: Mapping[str, Any], gpu: str) -> bool:
    """True when the row did not run what this checkout ships for its bucket on `gpu`: a shipped entry it did not
    use (added or re-tuned since), or a default where it used an entry since removed.  Rows that recorded no
    config source (older runs) are taken as current."""
    source = str(row.get("config_source") or "")
    if not source:
        return False
    entry = _shipped_entry(key, gpu)
    if entry is None:
        return not source.startswith("default")
    bucket, configs = entry
    # the bucket as the run wrote it (ports/configs/<gpu>/<kernel>.json[<bucket>]): the same dims in any order
    # (a suffix may follow: " (+default moe_topk_sum)")
    ran_bucket = m.group(1) if (m := re.search(r"\.json\[([^\]]*)\]", source)) else ""
    if set(ran_bucket.split(",")) != set(bucket.split(",")):
        return True
    try:
        ran = json.loads(str(row.get("config") or "{}"))
    except ValueError:
        return True
    return any(ran.get(name, {}).get(f) != v for name, cfg in configs.items() for f, v in cfg.items())


def row_stale(key: PlanKey, row: Mapping[str, Any], commit: str | None, gpu: str) -> bool:
    """Gated on an older port: the port's file changed since the run, or the row's shipped config did."""
    return port_changed_since(key[0], commit) or config_changed(key, row, gpu)


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", str(registry.ROOT), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _last_port_commit(kernel: str) -> str | None:
    spec = registry.specs().get(kernel)
    module = registry.port_module(spec) if spec is not None else None
    if module is None:
        return None
    done = _git("log", "-1", "--format=%H", "--", module.replace(".", "/") + ".py")
    return done.stdout.strip() or None if done is not None and done.returncode == 0 else None


@functools.cache
def port_changed_since(kernel: str, commit: str | None) -> bool:
    """True when the port's file has a commit that `commit` (a run's) does not contain; False when it has none or
    either commit is unknown here (no git, a shallow clone, a run from another repository)."""
    last = _last_port_commit(kernel)
    if not last or not commit:
        return False
    done = _git("merge-base", "--is-ancestor", last, commit)
    return done is not None and done.returncode == 1


def timed_pairs(runs: Sequence[Run]) -> dict[PlanKey, tuple[float, dict[str, Any], str | None]]:
    """{row: (Helion vs the best upstream, the Helion row, git commit of the run)} from the newest run pairing the
    two in itself (`report.pair`)."""
    out: dict[PlanKey, tuple[float, dict[str, Any], str | None]] = {}
    for run in newest_first(runs):
        commit = run.meta.get("git_commit") or None
        for g in build_groups(run.rows, run.meta):
            if HELION not in g.impls:
                continue
            for p in g.points:
                pr = pair(p, BEST)
                if pr is not None and pr.value is not None:
                    key = (g.kernel, g.model, canonical_shape(p.shape), p.dtype)
                    out.setdefault(key, (pr.value, p.rows[HELION], commit))
    return out


@dataclasses.dataclass
class Measured:
    """What the runs say of each planned row, read once for the table and the todo list."""

    newest: dict[PlanKey, tuple[dict[str, Any], str | None]]  # newest_rows
    timed: dict[PlanKey, tuple[float, dict[str, Any], str | None]]  # timed_pairs

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Measured:
        return cls(newest_rows(runs), timed_pairs(runs))


# ------------------------------------------------------------------------------------------------ tallies


@dataclasses.dataclass
class Tally:
    """One spec (or the specs of a category) against the plan."""

    specs: int = 0
    planned: int = 0
    gated: int = 0
    stale: int = 0
    failing: int = 0
    speedups: list[float] = dataclasses.field(default_factory=list)
    timed_stale: int = 0  # timed rows whose timing ran an older port or config

    def add(self, other: Tally) -> None:
        self.specs += other.specs
        self.planned += other.planned
        self.gated += other.gated
        self.stale += other.stale
        self.failing += other.failing
        self.speedups += other.speedups
        self.timed_stale += other.timed_stale

    @property
    def geomean(self) -> float | None:
        return geomean(self.speedups)


@dataclasses.dataclass
class Coverage:
    gpu: str
    n_runs: int
    quick: bool
    categories: dict[str, str]  # spec -> category
    per_spec: dict[str, Tally]
    unplanned: int = 0  # Helion rows of the runs at model shapes the plan does not have (the specs changed since)

    def per_category(self) -> dict[str, Tally]:
        out: dict[str, Tally] = {}
        for k in sorted(self.per_spec, key=lambda k: (self.categories[k], k)):
            out.setdefault(self.categories[k], Tally()).add(self.per_spec[k])
        return out

    def total(self) -> Tally:
        out = Tally()
        for t in self.per_spec.values():
            out.add(t)
        return out


def tally(plan: Sequence[RowPlan], specs: Mapping[str, str], runs: Sequence[Run], gpu: str,
          quick: bool = False, measured: Measured | None = None) -> Coverage:
    """Each spec's planned rows against the runs: gated, failing and timed rows and the timed speedups."""
    m = measured or Measured.of(runs)
    newest, timed = m.newest, m.timed
    categories = dict(specs)
    for r in plan:
        categories.setdefault(r.kernel, r.category)
    per_spec = {k: Tally(specs=1) for k in categories}
    keys = dict.fromkeys(plan_key(r.base_row()) for r in plan)  # one count per row, in plan order
    for key in keys:
        t = per_spec[key[0]]
        t.planned += 1
        row, commit = newest.get(key, (None, None))
        s = row["status"] if row is not None else None
        if s == "ok":
            t.gated += 1
            t.stale += row_stale(key, row, commit, gpu)
            if key in timed:
                value, trow, tcommit = timed[key]
                t.speedups.append(value)
                t.timed_stale += row_stale(key, trow, tcommit, gpu)
        elif s in FAILING:
            t.failing += 1
    # check_cases() rows (a `check` without --shapes) are no model shapes: only the other runs' rows are stale
    measured = {plan_key(r) for run in runs if not (run.meta.get("check_only") and not run.meta.get("check_shapes"))
                for r in run.rows if r["impl"] == HELION}
    return Coverage(gpu=gpu, n_runs=len(runs), quick=quick, categories=categories, per_spec=per_spec,
                    unplanned=len(measured - set(keys)))


TODO_COLUMNS = ("kernel", "model", "shape", "dtype", "reason")
#: the reasons a row needs the gate again (`check --shapes --only`); `untimed` rows need only a bench
GATE_REASONS = ("missing", "failing", "stale")
REASONS = (*GATE_REASONS, "untimed")


def todo(plan: Sequence[RowPlan], runs: Sequence[Run], gpu: str,
         measured: Measured | None = None) -> list[tuple[PlanKey, str]]:
    """The planned rows not yet gated and timed on the current port, in plan order, each with why: `missing` (no
    run measured it), `failing` (its newest row is incorrect, error or timeout), `stale` (ok, on an older port or
    config), `untimed` (gated on the current port, but no run pairs it with the best upstream on that port).
    Rows whose newest status is `unavailable` (the port declines the shape) are left out: a re-run would say the
    same."""
    m = measured or Measured.of(runs)
    newest, timed = m.newest, m.timed
    out = []
    for key in dict.fromkeys(plan_key(r.base_row()) for r in plan):
        row, commit = newest.get(key, (None, None))
        if row is None:
            out.append((key, "missing"))
        elif row["status"] in FAILING:
            out.append((key, "failing"))
        elif row["status"] == "ok":
            if row_stale(key, row, commit, gpu):
                out.append((key, "stale"))
            elif key not in timed or row_stale(key, timed[key][1], timed[key][2], gpu):
                out.append((key, "untimed"))
    return out


def write_todo(path: Path, rows: Sequence[tuple[PlanKey, str]]) -> None:
    """The todo rows as CSV (`harness check --shapes --only PATH` reads it back)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TODO_COLUMNS)
        for key, reason in rows:
            w.writerow([*key, reason])


def read_todo(path: Path, reasons: Sequence[str] | None = None) -> set[PlanKey]:
    """The plan keys of a todo CSV (`harness coverage --todo-out`), only those of `reasons` when given (a list
    without a reason column keeps every row); a file that is not one is a UsageError."""
    import csv

    try:
        with Path(path).open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in TODO_COLUMNS[:4] if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"--only {path}: not a todo list (no {', '.join(missing)} column; write one with "
                                 "`harness coverage --todo-out FILE`)")
            return {(r["kernel"], r["model"], canonical_shape(r["shape"]), r["dtype"]) for r in reader
                    if reasons is None or r.get("reason") in (None, "", *reasons)}
    except OSError as e:
        raise UsageError(f"--only {path}: {e.strerror or e}") from None


# ------------------------------------------------------------------------------------------------- output

HEADER = ["gated ok", "gated %", "of them on an older port", "failing (newest)", "timed vs best upstream",
          "of them on an older port", "geomean vs best upstream"]


def _cells(t: Tally) -> list[str]:
    pct = f"{100.0 * t.gated / t.planned:.1f} %" if t.planned else "—"
    return [str(t.planned), str(t.gated), pct, str(t.stale), str(t.failing), str(len(t.speedups)),
            str(t.timed_stale), fmt_x(t.geomean)]


def category_table(cov: Coverage) -> str:
    cats = cov.per_category()
    body = [[cat, str(t.specs), *_cells(t)] for cat, t in cats.items()]
    speeds = [[t.geomean] for t in cats.values()]
    total = cov.total()
    body.append(["all", str(total.specs), *_cells(total)])
    speeds.append([total.geomean])
    return md_table(["category", "specs", "Helion rows planned", *HEADER], body, speeds)


def spec_table(cov: Coverage) -> str:
    order = sorted(cov.per_spec, key=lambda k: (cov.categories[k], k))
    body = [[k, cov.categories[k], *_cells(cov.per_spec[k])] for k in order]
    return md_table(["spec", "category", "Helion rows planned", *HEADER], body,
                    [[cov.per_spec[k].geomean] for k in order])


def catalog_line(cov: Coverage) -> str:
    tallies = list(cov.per_spec.values())
    every = sum(1 for t in tallies if t.planned and t.gated == t.planned)
    current = sum(1 for t in tallies if t.planned and t.gated == t.planned and not t.stale)
    some = sum(1 for t in tallies if 0 < t.gated < t.planned)
    failing = sum(1 for t in tallies if t.failing)
    compared = [t for t in tallies if t.speedups]
    faster = sum(1 for t in compared if (t.geomean or 0.0) > 1.0)
    return (f"{len(tallies)} specs with a Helion port; {every} gated at every planned model shape on "
            f"{cov.gpu.upper()} ({current} of them with every row on the current port); {some} gated at some; "
            f"{failing} with a failing newest row; {faster} of {len(compared)} specs with an upstream comparison "
            "faster than the best upstream (geomean > 1.0)")


def render(cov: Coverage, per_spec: bool = False) -> str:
    total = cov.total()
    plan = "the quick subsets (`make bench-quick`)" if cov.quick else "a full `make bench`"
    lines = [
        f"## Helion port coverage on {cov.gpu.upper()}", "",
        f"Plan: every Helion row of {plan}, {total.planned} rows over {total.specs} specs. From {cov.n_runs} runs "
        f"under results/{cov.gpu}: a row is gated when the newest run measuring it (bench or `check --shapes`) has "
        "it ok (on an older port: the port's file has commits since that run's commit), failing when that row is "
        "incorrect, error or timeout; timed when gated and paired in one run with "
        "the best ok upstream row timed the same way (geomean: upstream / Helion, > 1: Helion faster).", "",
    ]
    if cov.unplanned:
        lines += [f"Not counted: {cov.unplanned} Helion rows of these runs at model shapes this plan does not have "
                  "(the spec's shapes changed since, or a full-plan row when planning --quick).", ""]
    lines += [category_table(cov), ""]
    if per_spec:
        lines += [spec_table(cov), ""]
    lines += [catalog_line(cov), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- cli


def _run_dirs(gpu_dir: Path) -> list[Path]:
    return sorted(p for p in gpu_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _newest_date(gpu_dir: Path) -> str:
    """The newest run start under a results/<gpu> folder (metadata date, else the run id's timestamp)."""
    dates = []
    for run in _run_dirs(gpu_dir):
        try:
            dates.append(str(results.read_metadata(run).get("date") or run.name))
        except results.RunError:
            dates.append(run.name)
    return max(dates, default="")


def gpu_folders(results_dir: Path) -> list[str]:
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if p.is_dir() and _run_dirs(p))


def choose_gpu(results_dir: Path, gpu: str | None) -> str:
    """--gpu SLUG (a folder under results/), else the only one, else the one with the newest run."""
    found = gpu_folders(results_dir)
    if gpu is not None:
        if gpu not in found:
            raise UsageError(f"unknown GPU folder '{gpu}' under {results_dir}; valid: {', '.join(found) or 'none'}")
        return gpu
    if not found:
        raise UsageError(f"no GPU folder with runs under {results_dir}")
    return max(found, key=lambda g: (_newest_date(results_dir / g), g))


def choose_runs(results_dir: Path, gpu: str | None, runs: Sequence[str] | None) -> tuple[str, list[Path]]:
    """(GPU slug, run folders): every folder under results/<gpu>, or the --runs given (a path, or a run id under
    results/<gpu>); a named folder without results.csv is a UsageError."""
    if not runs:
        slug = choose_gpu(results_dir, gpu)
        return slug, _run_dirs(results_dir / slug)
    paths = []
    for name in runs:
        path = Path(name)
        if not results.is_run_dir(path):
            by_id = results_dir / (gpu or choose_gpu(results_dir, None)) / name
            if not results.is_run_dir(by_id):
                raise UsageError(f"--runs {name}: no run folder (no results.csv there or under "
                                 f"{by_id.parent})")
            path = by_id
        paths.append(path)
    parents = sorted({p.resolve().parent.name for p in paths})
    if gpu is None and len(parents) > 1:
        raise UsageError(f"--runs: runs of several GPU folders ({', '.join(parents)}); give the runs of one GPU")
    if gpu is not None and parents != [gpu]:
        other = next(p for p in parents if p != gpu)
        raise UsageError(f"--runs: a run under '{other}', not under --gpu {gpu}")
    return gpu or parents[0], list(dict.fromkeys(paths))


def report(results_dir: Path, gpu: str | None = None, runs: Sequence[str] | None = None, quick: bool = False,
           per_spec: bool = False, todo_out: Path | None = None) -> str:
    """The markdown `harness coverage` prints; with `todo_out`, the rows still to gate are written there too."""
    slug, paths = choose_runs(Path(results_dir), gpu, runs)
    plan, run_list = planned(quick), read_runs(paths)
    measured = Measured.of(run_list)
    cov = tally(plan, ported_specs(), run_list, slug, quick, measured)
    text = render(cov, per_spec)
    if todo_out is not None:
        rows = todo(plan, run_list, slug, measured)
        write_todo(Path(todo_out), rows)
        why = {r: sum(1 for _, x in rows if x == r) for r in REASONS}
        gate = sum(why[r] for r in GATE_REASONS)
        text += (f"Todo: {len(rows)} planned rows not yet gated and timed on the current port (" +
                 ", ".join(f"{n} {r}" for r, n in why.items()) + f") -> {todo_out}. Gate the {gate} missing, "
                 f"failing and stale ones: `harness check --shapes --impl helion --only {todo_out}`; gate and time "
                 f"them all, with every upstream at those shapes: `harness bench --only {todo_out}` (narrow it "
                 "with --category/--kernel/--model)\n")
    return text
