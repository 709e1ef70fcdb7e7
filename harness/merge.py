"""`python -m harness merge RUN... -o RUN`: the shards of one sweep (`bench --shard i/n`, one per node or array
task) into one run folder.

Refused (one line, exit 2): runs measured on different GPUs, at different git commits, with different versions
(torch, triton, helion, CUDA, driver, python, any upstream both loaded) or seeds, shards of different plans,
the same shard twice, or a row present in two runs. Otherwise every row and its samples are copied into the new
folder (the inputs' logs under logs/<run-id>/). The result carries the completion mark only when every shard of
the plan is there and finished; else it is left incomplete with `incomplete` in its metadata naming the missing
or stopped shards and rows (readers refuse it unless asked, as any stopped sweep), and the command exits 1.
Runs without shards (e.g. one dtype per GPU) merge the same way when their rows are disjoint.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import results

#: metadata that must agree: timings measured under different ones are not one table
SAME_KEYS = ("gpu", "gpu_slug", "git_commit", "git_dirty", "torch", "triton", "helion", "cuda", "driver", "python",
             "seed", "quick")


class MergeError(Exception):
    """Runs that cannot be merged: one line, exit 2."""


def _shard(meta: dict[str, Any]) -> dict[str, Any] | None:
    s = meta.get("shard")
    return s if isinstance(s, dict) else None


def _key_text(key: Sequence[str]) -> str:
    return " ".join(key)


def check_mergeable(runs: Sequence[Path], metas: Sequence[dict[str, Any]]) -> None:
    """Raise MergeError (one line) unless the runs are parts of one sweep."""
    first = metas[0]
    for run, meta in zip(runs[1:], metas[1:]):
        for k in SAME_KEYS:
            if meta.get(k) != first.get(k):
                raise MergeError(f"{run} and {runs[0]} differ in {k} ({meta.get(k)!r} vs {first.get(k)!r}): "
                                 "runs from different GPUs, commits or versions are not one table")
        ups, ups0 = meta.get("upstreams") or {}, first.get("upstreams") or {}
        for name in sorted(set(ups) & set(ups0)):
            if ups[name] != ups0[name]:
                raise MergeError(f"{run} and {runs[0]} differ in upstream {name} ({ups[name]} vs {ups0[name]})")
    shards = [_shard(m) for m in metas]
    if any(s is not None for s in shards) and not all(s is not None for s in shards):
        plain = next(r for r, s in zip(runs, shards) if s is None)
        raise MergeError(f"{plain} is not a shard (no `shard` in its metadata) but other runs are: merge the shards "
                         "of one sweep, or whole runs, not both")
    seen: dict[int, Path] = {}
    for run, s in zip(runs, shards):
        if s is None:
            continue
        s0 = shards[0]
        assert s0 is not None
        if (s.get("count"), s.get("plan_digest")) != (s0.get("count"), s0.get("plan_digest")):
            raise MergeError(f"{run} is shard {s.get('index')}/{s.get('count')} of plan {s.get('plan_digest')}, "
                             f"{runs[0]} of {s0.get('index')}/{s0.get('count')} of plan {s0.get('plan_digest')}: "
                             "shards of different plans (selection, flags or expected costs) do not partition one")
        if s.get("index") in seen:
            raise MergeError(f"overlapping shards: shard {s.get('index')}/{s.get('count')} is both "
                             f"{seen[s['index']]} and {run}")
        seen[s["index"]] = run


def merge(runs: Sequence[Path], out: Path, command: str | None = None) -> tuple[Path, str | None]:
    """Write the merged run folder `out`; return it and why it is incomplete (None when complete)."""
    runs = [Path(r) for r in runs]
    if not runs:
        raise MergeError("nothing to merge: give the run folders of the shards")
    if out.exists():
        raise MergeError(f"{out} exists: merge writes a new run folder")
    read = []
    for run in runs:
        try:
            read.append(results.read_run(run, allow_incomplete=True))  # a stopped shard keeps its finished rows
        except FileNotFoundError as e:
            raise MergeError(str(e)) from None
    metas = [m for _r, _s, m in read]
    check_mergeable(runs, metas)
    # shards in index order, whole runs as given
    order = sorted(range(len(runs)), key=lambda k: (_shard(metas[k]) or {}).get("index", k))
    owner: dict[tuple[str, ...], Path] = {}
    for k in order:
        for row in read[k][0]:
            key = results.row_key(row)
            if key in owner:
                raise MergeError(f"overlapping runs: row {_key_text(key)} is in {owner[key]} and {runs[k]}")
            owner[key] = runs[k]

    problems, missing_keys, planned = _missing(runs, read, order)
    base = dict(metas[order[0]])
    for k in ("complete", "shard", "incomplete", "planned_rows"):
        base.pop(k, None)
    base["run_id"] = out.name
    base["bench_command"] = base.get("command")
    base["command"] = command or "python -m harness merge " + " ".join(shlex.quote(str(r)) for r in runs)
    base["date"] = min(str(m.get("date") or "") for m in metas) or None
    base["upstreams"] = {k: v for m in metas for k, v in (m.get("upstreams") or {}).items()}
    base["versions_loaded"] = {k: v for m in metas for k, v in (m.get("versions_loaded") or {}).items()}
    base["token_dims"] = {k: v for m in metas for k, v in (m.get("token_dims") or {}).items()}
    base["gpus"] = sorted({str(g) for m in metas for g in (m.get("gpus") or [])})
    base["row_cost_s"] = _merged_costs(read)
    base["merged_from"] = [
        {"run": runs[k].name, "host": metas[k].get("host"), "gpus": metas[k].get("gpus"), "rows": len(read[k][0]),
         **({"shard": f"{s['index']}/{s['count']}"} if (s := _shard(metas[k])) else {})} for k in order]
    sh = _shard(metas[order[0]])
    if sh is not None:
        base["plan_digest"] = sh.get("plan_digest")
    writer = results.RunWriter(out, base, planned_rows=planned)
    for k in order:
        rows, samples, _meta = read[k]
        for row in rows:
            writer.add(row, samples.get(results.row_key(row)))
        logs = runs[k] / "logs"
        if logs.is_dir():
            shutil.copytree(logs, out / "logs" / runs[k].name)
    if problems:
        why = "; ".join(problems)
        if missing_keys:
            shown = ", ".join(_key_text(key) for key in missing_keys[:5])
            why += f"; missing rows: {shown}" + (f" (+{len(missing_keys) - 5} more)" if len(missing_keys) > 5 else "")
        writer.metadata["incomplete"] = why
        writer.metadata["missing_rows"] = len(missing_keys) if missing_keys else planned - writer.rows_written
        writer.write_metadata()
        return out, why
    writer.finish()
    return out, None


def _missing(runs: Sequence[Path], read: Sequence[tuple], order: Sequence[int]
             ) -> tuple[list[str], list[tuple[str, ...]], int]:
    """(what is missing, one phrase per shard or run; the missing row keys where a plan names them; planned rows)."""
    problems: list[str] = []
    metas = [m for _r, _s, m in read]
    shards = [_shard(m) for m in metas]
    if shards[0] is None:  # whole runs: each must be complete
        planned = 0
        for k in order:
            rows, _s, meta = read[k]
            planned += int(meta.get("planned_rows") or len(rows))
            why = results.completeness(runs[k], meta, len(rows))
            if why:
                problems.append(f"run {runs[k].name} incomplete ({len(rows)} of {meta.get('planned_rows')} rows)")
        return problems, [], planned
    count = int(shards[0]["count"])
    planned = int(shards[0].get("plan_rows") or 0)
    plan: dict[tuple[str, ...], int] = {}
    for run in runs:
        plan = results.read_plan(run) or plan
        if plan:
            break
    have = {results.row_key(r) for rows, _s, _m in read for r in rows}
    missing_keys = [key for key in plan if key not in have]
    present = {int(s["index"]): k for k, s in enumerate(shards) if s is not None}
    for i in range(count):
        n_planned = sum(1 for v in plan.values() if v == i) if plan else None
        if i not in present:
            problems.append(f"shard {i}/{count} missing (no run given" +
                            (f": {n_planned} planned rows)" if n_planned is not None else ")"))
            continue
        k = present[i]
        rows, _s, meta = read[k]
        shard_rows = int(shards[k].get("rows", meta.get("planned_rows") or len(rows)))  # type: ignore[union-attr]
        if not isinstance(meta.get("complete"), dict) or len(rows) < shard_rows:
            problems.append(f"shard {i}/{count} ({runs[k].name}) stopped after {len(rows)} of {shard_rows} rows")
    return problems, missing_keys, planned


def _merged_costs(read: Sequence[tuple]) -> dict[str, float]:
    """Row-weighted mean of the runs' `row_cost_s` per kernel (each run's mean is over its rows of that kernel)."""
    total: dict[str, float] = {}
    n: dict[str, int] = {}
    for rows, _s, meta in read:
        costs = meta.get("row_cost_s") or {}
        for kernel, cost in costs.items():
            c = sum(1 for r in rows if r["kernel"] == kernel) or 1
            total[kernel] = total.get(kernel, 0.0) + float(cost) * c
            n[kernel] = n.get(kernel, 0) + c
    return {k: round(total[k] / n[k], 3) for k in sorted(total)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness merge", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="run folders: the shards of one sweep")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the merged run folder to create")
    ap.add_argument("--no-report", action="store_true", help="do not render speedup.md / plots of the merged run")
    args = ap.parse_args(argv)
    argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        out, why = merge(args.runs, args.out, command=f"python -m harness merge {argv_text}")
    except (MergeError, results.RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len(results.read_rows(out, allow_incomplete=True))
    if why:
        print(f"merged {n} rows -> {out}: INCOMPLETE: {why}", file=sys.stderr)
    else:
        print(f"merged {n} rows of {len(args.runs)} runs -> {out} (complete)", file=sys.stderr)
    if not args.no_report:
        from harness import report

        report.main([str(out)] + (["--allow-incomplete"] if why else []))
    print(f"RUN_DIR={out}")
    return 1 if why else 0
