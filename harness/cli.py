"""`python -m harness <command>`: bench, check, list, report, compare, merge, coverage, upstreams, pack."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import registry, results
from harness.results import (
    RESULTS_DIR,
    RunError,
    RunWriter,
    gpu_slug,
    list_runs,
    new_run_dir,
    read_metadata,
    read_rows,
    write_plan,
)
from harness.shapes import ShapeError, available_models, load_all, load_model

if TYPE_CHECKING:
    from harness.runner import RowPlan

ROOT = Path(__file__).resolve().parent.parent


class UsageError(Exception):
    """Bad user input: printed as one line, exit 2."""


def _split(value: str | None) -> list[str] | None:
    if value is None or value in ("", "all"):
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _choose(kind: str, wanted: list[str] | None, valid: list[str]) -> list[str]:
    if wanted is None:
        return list(valid)
    bad = [w for w in wanted if w not in valid]
    if bad:
        raise UsageError(f"unknown {kind} '{bad[0]}'; valid: {', '.join(valid)}")
    return wanted


def select(args: argparse.Namespace) -> tuple[list[str], list, list[str] | None, list[str] | None]:
    specs = registry.specs()
    cats = _choose("category", _split(args.category), registry.categories())
    in_cats = sorted(k for k, s in specs.items() if s.category in cats)
    for k in _split(args.kernel) or []:
        if k in specs and k not in in_cats:  # a real kernel of another category: say which, not "unknown"
            raise UsageError(f"kernel '{k}' belongs to category '{specs[k].category}', not "
                             f"'{','.join(cats)}'; use --category {specs[k].category} (or all)")
    kernels = _choose("kernel", _split(args.kernel), in_cats if args.category not in (None, "all") else sorted(specs))
    models = [load_model(m) for m in _choose("model", _split(args.model), available_models())] \
        if _split(args.model) else load_all()
    all_impls = sorted({p for k in kernels for p in registry.providers(k)})
    impls = _split(args.impl)
    if impls is not None:
        _choose("impl", impls, all_impls)
    dtypes = _split(getattr(args, "dtype", None))
    if dtypes is not None:
        _choose("dtype", dtypes, sorted({d for k in kernels for d in specs[k].dtypes}))
    return kernels, models, impls, dtypes


def _git(*cmd: str) -> str:
    try:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _commit() -> str | None:
    """HELION_BENCH_GIT_COMMIT when set (a copied tree: a lent GPU box may carry a stale .git of its own, seen
    on the H100 box: its HEAD was an older commit), else the checkout's HEAD."""
    env = os.environ.get("HELION_BENCH_GIT_COMMIT", "")
    if env:
        if not re.fullmatch(r"[0-9a-f]{40}", env):
            raise UsageError(f"HELION_BENCH_GIT_COMMIT must be a full 40-hex commit id, got {env!r}")
        return env
    head = _git("rev-parse", "HEAD")
    return head if re.fullmatch(r"[0-9a-f]{40}", head) else None


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def environment(device: str) -> dict[str, Any]:
    import torch

    meta: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "helion": _version("helion"),
        "cuda": torch.version.cuda,
        # a copy of the tree without .git (a lent GPU box) gets the commit through the environment
        "git_commit": _commit(),
        "git_dirty": (os.environ.get("HELION_BENCH_GIT_DIRTY") == "1")
        if os.environ.get("HELION_BENCH_GIT_COMMIT") or not _git("rev-parse", "--git-dir")
        else bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        meta.update(gpu=torch.cuda.get_device_name(0), gpu_slug=gpu_slug(torch.cuda.get_device_name(0)),
                    sm_count=props.multi_processor_count, gpu_mem_gb=round(props.total_memory / 2**30, 1),
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))))
        try:
            meta["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            meta["driver"] = None
    else:
        meta.update(gpu="cpu", gpu_slug="cpu", driver=None)
    return meta


def parse_gpus(value: str | None) -> list[str]:
    """`--gpus 0,1,2` -> ["0", "1", "2"] (CUDA_VISIBLE_DEVICES values); duplicates are a one-line UsageError."""
    gpus = [g.strip() for g in (value or "").split(",") if g.strip()]
    dup = next((g for g in gpus if gpus.count(g) > 1), None)
    if dup is not None:
        raise UsageError(f"--gpus {value}: GPU {dup} listed twice (one timing worker per GPU)")
    return gpus


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """`--shard i/n` (0 <= i < n) -> (i, n); anything else is a one-line UsageError."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"--shard {value}: expected i/n with 0 <= i < n (e.g. --shard 0/4 ... --shard 3/4)")
    return int(m.group(1)), int(m.group(2))


def _check_gpus(gpus: list[str], meta: dict[str, Any]) -> None:
    """Listed device indices exist and are one GPU model (the run's `gpu` is theirs). Indices are only ours to
    check when this process sees every device (no CUDA_VISIBLE_DEVICES) and they are plain numbers."""
    import torch

    if not gpus or os.environ.get("CUDA_VISIBLE_DEVICES") or not all(g.isdigit() for g in gpus):
        return
    n = torch.cuda.device_count()
    bad = next((g for g in gpus if int(g) >= n), None)
    if bad is not None:
        raise UsageError(f"--gpus {','.join(gpus)}: no GPU {bad} on this machine ({n} visible: 0..{n - 1})")
    names = {g: torch.cuda.get_device_name(int(g)) for g in gpus}
    if len(set(names.values())) > 1:
        which = "; ".join(f"{g}: {v}" for g, v in names.items())
        raise UsageError(f"--gpus {','.join(gpus)}: mixes GPU models ({which}): one run times one kind of GPU")
    meta["gpu"] = names[gpus[0]]
    meta["gpu_slug"] = gpu_slug(names[gpus[0]])


def committed_row_costs(slug: str) -> tuple[dict[str, float], str | None]:
    """Per kernel, the `row_cost_s` of the newest run committed under results/<slug>/ that measured that kernel
    (runs are often partial: one run's costs alone would leave most kernels at the mean of a few), and where they
    come from.  Committed runs only (git ls-files): every node of a sharded sweep reads the same files, whatever
    runs it wrote itself.  A tree without git (a copied checkout on a lent GPU box) reads the run folders present."""
    tracked = _git("ls-files", "--", f"results/{slug}").splitlines()
    if not tracked and not _git("rev-parse", "--git-dir"):
        tracked = [str(p.relative_to(ROOT)) for p in (ROOT / "results" / slug).glob("*/metadata.json")]
    metas = sorted((t for t in tracked if re.fullmatch(rf"results/{re.escape(slug)}/[^/]+/metadata\.json", t)),
                   reverse=True)
    costs: dict[str, float] = {}
    used: list[str] = []
    for rel in metas:
        try:
            run_costs = read_metadata((ROOT / rel).parent).get("row_cost_s")
        except RunError:
            continue
        if not isinstance(run_costs, dict):
            continue
        new = {str(k): float(v) for k, v in run_costs.items() if str(k) not in costs}
        if new:
            costs.update(new)
            used.append(str(Path(rel).parent))
    if not used:
        return {}, None
    return costs, used[0] if len(used) == 1 else f"{len(used)} runs, newest {used[0]}"


def expected_costs(costs_from: str | None, slug: str) -> tuple[dict[str, float], str]:
    """(expected seconds per row by kernel, where they come from) for balancing GPUs and shards."""
    from harness.runner import DEFAULT_ROW_COST_S

    default = f"default {DEFAULT_ROW_COST_S} s/row"
    if costs_from == "none":
        return {}, default
    if costs_from:
        costs = read_metadata(Path(costs_from)).get("row_cost_s")
        if not isinstance(costs, dict) or not costs:
            raise UsageError(f"--costs-from {costs_from}: no row_cost_s in its metadata.json (runs record it since "
                             "`bench` reports row costs)")
        return {str(k): float(v) for k, v in costs.items()}, str(costs_from)
    costs, source = committed_row_costs(slug)
    return costs, (f"{source} (row_cost_s)" if source else default + " (no committed run records row_cost_s)")


def dry_run_slug(gpu_slug: str | None) -> str:
    """Whose committed row costs a dry run uses: --gpu-slug, else the newest GPU folder under results/, else none
    ("": the default row cost)."""
    from harness.coverage import choose_gpu

    try:
        return choose_gpu(RESULTS_DIR, gpu_slug)
    except UsageError:
        if gpu_slug is not None:
            raise
        return ""


def print_plan(rows: Sequence[Any], cost: Any, expected: Mapping[str, float], source: str, slug: str,
               gpus: Sequence[str]) -> int:
    """`bench --dry-run`'s output: per kernel rows, shapes and expected seconds of the (cut) plan, the total over
    the GPUs, and which kernels count the fallback row cost; nothing is run or written."""
    per: dict[str, list[float]] = {}
    shapes: dict[str, set[str]] = {}
    for r in rows:
        per.setdefault(r.kernel, []).append(cost(r))
        shapes.setdefault(r.kernel, set()).add(json.dumps([r.model, r.regime, r.params, r.dtype], sort_keys=True))
    total = sum(sum(v) for v in per.values())
    lines = ["| kernel | rows | shapes | expected s |", "|---|---|---|---|"]
    for k in sorted(per, key=lambda k: (-sum(per[k]), k)):
        lines.append(f"| {k} | {len(per[k])} | {len(shapes[k])} | {sum(per[k]):.0f} |")
    n = max(1, len(gpus))
    lines.append(f"| all | {len(rows)} | {sum(len(v) for v in shapes.values())} | {total:.0f} |")
    print("\n".join(lines))
    guessed = sorted(k for k in per if k not in expected)
    print(f"expected {total / n:.0f} s of sweep" + (f" over {n} GPUs" if n > 1 else "") +
          f" (row costs: {source}; on {slug or 'no GPU folder'}), plus start-up, ceilings and compiles; "
          "nothing was run")
    if guessed:
        print(f"{len(guessed)} of {len(per)} kernels have no measured row cost and count "
              f"{per[guessed[0]][0]:.2f} s/row ({'the mean of the measured ones' if expected else 'the default'}): "
              f"{', '.join(guessed)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from harness.runner import (
        Runner,
        RunOptions,
        fit_budget,
        group_of,
        partition,
        plan_digest,
        plan_rows,
        row_cost,
    )

    kernels, models, impls, dtypes = select(args)
    tokens = selected_tokens(args, kernels, models)
    gpus = parse_gpus(args.gpus)
    shard = parse_shard(args.shard)
    if args.max_s is not None and (shard is not None or args.max_s <= 0):
        raise UsageError(f"--max-s {args.max_s:g}: " + ("a positive number of seconds" if args.max_s <= 0 else
                         "not with --shard (shards cut the whole plan across nodes; merge expects all of it)"))
    device = args.device
    if device == "cuda" and not torch.cuda.is_available() and not args.dry_run:
        raise UsageError("no CUDA GPU visible (torch.cuda.is_available() is False): `make bench` needs a GPU; "
                         "`make report` rebuilds reports from committed results without one")
    rows = plan_rows(kernels, models, impls, dtypes, quick=args.quick, tokens=tokens)
    if not rows:
        raise UsageError("nothing to run: no model in the selection uses the selected kernels "
                         f"(kernels: {', '.join(kernels)}; models: {', '.join(m.name for m in models)})")
    if args.only is not None:  # the todo list's shapes, every selected provider at each (Helion and upstreams)
        rows = only_todo(rows, args.only, None, "rows", "run")
    gpus_used = gpus
    if args.dry_run:  # the plan only: no GPU, no environment probe, nothing written
        meta: dict[str, Any] = {}
        slug = dry_run_slug(args.gpu_slug)
    else:
        meta = environment(device)
        if device == "cuda":
            _check_gpus(gpus, meta)  # --gpus: the slug of the GPUs named
            gpus_used = gpus or [(os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]]
        slug = meta["gpu_slug"]
    expected, cost_source = expected_costs(args.costs_from, slug)
    cost = row_cost(expected)
    plan = rows
    if shard is not None:  # whole (kernel, model) groups, balanced by expected cost; the same cut on every node
        bins = partition(plan, shard[1], cost)
        rows = bins[shard[0]]
    budget = None
    if args.max_s is not None:  # (this node's part of) the plan cut to whole shapes that fit the time budget
        rows, taken, planned, expected_s = fit_budget(rows, cost, args.max_s)
        if not rows:
            raise UsageError(f"--max-s {args.max_s:g}: not even one shape fits (the cheapest is expected to take "
                             f"longer; expected costs from {cost_source})")
        budget = {"max_s": args.max_s, "shapes": taken, "shapes_planned": planned,
                  "expected_s": round(expected_s, 1)}
        print(f"--max-s {args.max_s:g}: {taken} of {planned} shapes ({len(rows)} rows), expected {expected_s:.0f} s "
              f"(row costs: {cost_source})", file=sys.stderr)
    if args.dry_run:
        return print_plan(rows, cost, expected, cost_source, slug, gpus)
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{args.category or 'all'}"
    if meta.get("git_commit"):
        run_id += f"-{meta['git_commit'][:8]}"
    if dtypes and len(dtypes) == 1:
        run_id += f"-{dtypes[0]}"
    if shard is not None:
        run_id += f"-shard{shard[0]}of{shard[1]}"
    out_root = Path(args.out) if args.out else RESULTS_DIR / meta["gpu_slug"]
    run_dir = new_run_dir(out_root, run_id)
    run_id = run_dir.name
    meta.update(seed=args.seed, command=" ".join(shlex.quote(a) for a in sys.argv), quick=args.quick,
                selection={"kernels": kernels, "models": [m.name for m in models], "impls": impls,
                           "dtypes": dtypes, **({"only": str(args.only)} if args.only else {})},
                run_id=run_id, upstreams={}, token_dims=token_dims(kernels),
                gpus=gpus_used, expected_row_cost_from=cost_source)
    if budget is not None:
        meta["budget"] = budget
    if shard is not None:
        meta["shard"] = {"index": shard[0], "count": shard[1], "plan_rows": len(plan), "rows": len(rows),
                         "plan_digest": plan_digest(plan, cost)}
    if device == "cuda" and not args.no_ceilings:
        from harness.timing import measure_ceilings

        first = gpus[0] if gpus and gpus[0].isdigit() and not os.environ.get("CUDA_VISIBLE_DEVICES") else "0"
        meta["ceilings"], meta["ceilings_method"] = measure_ceilings(torch.device("cuda", int(first)))
        torch.cuda.empty_cache()
    writer = RunWriter(run_dir, meta, planned_rows=len(rows))
    if shard is not None:
        where = {group_of(r): b for b, part in enumerate(bins) for r in part}
        write_plan(run_dir, shard[1], meta["shard"]["plan_digest"], [(where[group_of(r)], r.base_row()) for r in plan])
        print(f"shard {shard[0]}/{shard[1]}: {len(rows)} of the plan's {len(plan)} rows", file=sys.stderr)
    print(f"{len(rows)} rows -> {run_dir}" + (f" on GPUs {','.join(gpus)}" if len(gpus) > 1 else ""),
          file=sys.stderr)
    opts = RunOptions(device=device, seed=args.seed, timeout_s=args.timeout, first_timeout_s=args.first_timeout,
                      target_s=args.target_s, use_graph=not args.no_graph, gpus=tuple(gpus),
                      expected_row_cost_s=expected)
    runner = Runner(writer, opts)
    counts = runner.run(rows)
    upstream = {k: v for k, v in runner.versions.items() if k not in ("helion", "torch", "triton")}
    meta["upstreams"] = upstream
    meta["versions_loaded"] = runner.versions
    # wall s/row per kernel on the runner's clock: logged, and the expected costs of the next sweep's balancing
    report_costs = getattr(runner, "report_row_costs", None)  # a stand-in runner (tests) times nothing
    meta["row_cost_s"] = report_costs() if report_costs else {}
    writer.finish()  # the completion mark, last: a sweep stopped before here reads as incomplete
    print("status counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    if not args.no_report:
        from harness import report

        report.main([str(run_dir)])
    print(f"RUN_DIR={run_dir}")
    return 0


def parse_tokens(value: str | None) -> list[int] | None:
    """`--tokens 1,32,2048` -> [1, 32, 2048]; anything else is a one-line UsageError."""
    if not value:
        return None
    out = []
    for part in value.split(","):
        part = part.strip()
        if not re.fullmatch(r"[0-9]+", part) or int(part) <= 0:
            raise UsageError(f"--tokens {value}: '{part}' is not a positive integer (e.g. --tokens 1,32,2048)")
        out.append(int(part))
    return out


def token_dims(kernels: list[str]) -> dict[str, str | None]:
    """Each kernel's token dim (KernelSpec.token_dim), recorded in metadata.json for the report's x axis."""
    specs = registry.specs()
    return {k: specs[k].token_dim for k in kernels}


AVAIL_COLUMNS = ("kernel", "category", "provider", "status", "reason")


def _availability(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """kernel x provider -> pass (every dtype passed) / fail (first failing dtype's reason) / unavailable."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kernel"], r["category"], r["impl"]), []).append(r)
    out = []
    for (kernel, category, provider), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        bad = [r for r in rs if r["status"] in ("incorrect", "error", "timeout")]
        unav = [r for r in rs if r["status"] == "unavailable"]
        if bad:
            status = "fail"
            reason = f"{bad[0]['dtype']}: {bad[0]['status']}: {bad[0].get('error') or ''}"
        elif len(unav) == len(rs):
            status, reason = "unavailable", (unav[0].get("error") or "").removeprefix("unavailable: ")
        else:
            status = "pass"
            reason = "; ".join(f"{r['dtype']}: {(r.get('error') or '').removeprefix('unavailable: ')}" for r in unav)
        out.append({"kernel": kernel, "category": category, "provider": provider, "status": status,
                    "reason": reason})
    return out


def write_availability(rows: list[dict[str, Any]], out_dir: Path, meta: dict[str, Any]) -> list[dict[str, str]]:
    import csv

    matrix = _availability(rows)
    with (out_dir / "availability.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=AVAIL_COLUMNS)
        w.writeheader()
        w.writerows(matrix)
    cov = catalog_coverage(matrix)
    counts = {s: sum(m["status"] == s for m in matrix) for s in ("pass", "fail", "unavailable")}
    lines = [
        f"# Upstream availability on {meta.get('gpu', '?')}",
        "",
        f"Correctness-only sweep (`python -m harness check`), {meta.get('date', '?')}, commit "
        f"{(meta.get('git_commit') or '?')[:10]}, seed {meta.get('seed')}: one small shape per kernel and dtype, "
        "output NaN-poisoned, compared with the spec's reference, re-checked on a second seed.",
        "",
        *([f"**Note:** {meta['note']}", ""] if meta.get("note") else []),
        f"kernel x provider: {counts['pass']} pass, {counts['fail']} fail, {counts['unavailable']} unavailable.",
        "",
        f"Catalog rows with a Triton original at the pinned releases: {len(cov['triton_rows'])}; run and pass on "
        f"this GPU: {len(cov['passing'])} ({100 * len(cov['passing']) / max(len(cov['triton_rows']), 1):.0f} %); "
        f"with an adapter that fails: {len(cov['failing'])} (rows {', '.join(map(str, cov['failing'])) or '-'}); "
        f"adapter unavailable here: {len(cov['unavailable'])} (rows {', '.join(map(str, cov['unavailable'])) or '-'}); "
        f"adapter present but not run in this sweep: {len(cov['not_run'])} "
        f"(rows {', '.join(map(str, cov['not_run'])) or '-'}); with no adapter yet: {len(cov['no_adapter'])} "
        f"(rows {', '.join(map(str, cov['no_adapter'])) or '-'}). Rows without a Triton original "
        f"(removed upstream, CUDA-/PyTorch-only, or a Helion example): {', '.join(map(str, cov['no_triton'])) or '-'}.",
        "",
        "| kernel | category | provider | status | reason |",
        "|---|---|---|---|---|",
    ]
    for m in matrix:
        reason = m["reason"].replace("|", "\\|")[:240]
        lines.append(f"| {m['kernel']} | {m['category']} | {m['provider']} | {m['status']} | {reason} |")
    lines += ["", "## Catalog rows without an adapter or a Triton original, and why", "",
              "| row | kernel (source) | why |", "|---|---|---|"]
    for row in sorted(cov["why"]):
        title, why = cov["why"][row]
        lines.append(f"| {row} | {title} | {why.replace('|', '/')} |")
    (out_dir / "availability.md").write_text("\n".join(lines) + "\n")
    return matrix


CATALOG = ROOT / "harness" / "catalog.yaml"
NO_TRITON = ("removed", "cuda-only/pytorch-only", "helion-only")


def _provider_of(source: str) -> str:
    """The provider name adapters use for a catalog `source` (PyPI dist or github:owner/repo)."""
    from upstream_adapters._loader import read_lock

    try:
        return read_lock().entry(source).name
    except KeyError:
        return {"fla-core": "fla", "flashinfer-python": "flashinfer"}.get(source, source)


def catalog_coverage(matrix: list[dict[str, str]]) -> dict[str, list[int]]:
    """Which numbered catalog rows (harness/catalog.yaml) run and pass: a row passes when a spec lists it and
    that spec's adapter for the row's upstream passes."""
    import yaml

    entries = [e for e in yaml.safe_load(CATALOG.read_text()) if isinstance(e["row"], int)]
    specs = registry.specs()
    status = {(m["kernel"], m["provider"]): m["status"] for m in matrix}
    triton_rows = sorted({e["row"] for e in entries if e["status"] not in NO_TRITON})
    no_triton = sorted({e["row"] for e in entries} - set(triton_rows))
    passing, failing, unavailable, not_run = set(), set(), set(), set()
    for e in entries:
        if e["status"] in NO_TRITON:
            continue
        provider = _provider_of(e["source"])
        for k, spec in specs.items():
            if e["row"] in spec.catalog_rows:
                st = status.get((k, provider))
                if st == "pass":
                    passing.add(e["row"])
                elif st == "fail":
                    failing.add(e["row"])
                elif st == "unavailable":
                    unavailable.add(e["row"])
                elif provider in registry.providers(k):
                    not_run.add(e["row"])  # an adapter exists but this run has no row for it
    failing -= passing
    unavailable -= passing | failing
    not_run -= passing | failing | unavailable
    no_adapter = sorted(set(triton_rows) - passing - failing - unavailable - not_run)
    why = {e["row"]: " ".join(str(e.get("reason") or "").split()) for e in entries}
    titles = {e["row"]: f"{e['title']} ({e['source']})" for e in entries}
    row_status = {e["row"]: e["status"] for e in entries}
    return {"triton_rows": triton_rows, "passing": sorted(passing), "failing": sorted(failing),
            "unavailable": sorted(unavailable), "not_run": sorted(not_run), "no_adapter": no_adapter,
            "no_triton": no_triton,
            "why": {**{r: (titles[r], why[r] or "no adapter yet") for r in no_adapter},
                    **{r: (titles[r], why[r] or f"no Triton original at the pin ({row_status[r]})")
                       for r in no_triton}}}


def selected_tokens(args: argparse.Namespace, kernels: list[str], models: list) -> list[int] | None:
    """--tokens parsed and checked against the token counts the selection plans (one-line UsageError)."""
    from harness.runner import token_counts

    tokens = parse_tokens(args.tokens)
    if tokens is not None:
        valid = token_counts(kernels, models, quick=args.quick)
        bad = [t for t in tokens if t not in valid]
        if bad:
            raise UsageError(f"--tokens {','.join(map(str, bad))}: not a token count of the selection; valid: "
                             f"{', '.join(map(str, sorted(valid))) or '(none: no selected kernel has a token dim)'}")
    return tokens


def only_todo(rows: list[RowPlan], path: Path, reasons: Sequence[str] | None, what: str,
              verb: str) -> list[RowPlan]:
    """`rows` narrowed to the shapes of a todo list (`--only`, `harness coverage --todo-out`), those of `reasons`
    only when given; none left is a UsageError."""
    from harness.coverage import plan_key, read_todo

    wanted = read_todo(path, reasons)
    kept = [r for r in rows if plan_key(r.base_row()) in wanted]
    if not kept:
        raise UsageError(f"--only {path}: none of its {len(wanted)} {what} is in the selection (nothing to {verb})")
    return kept


def _check_plans(args: argparse.Namespace) -> tuple[list[RowPlan], list[str]]:
    """(rows, models) of a check: each spec's check_cases(), or with --shapes the model shapes `bench` plans for the
    same selection (--model, --quick, --tokens): a port gated at every shape it will be timed at, without timing."""
    from harness.runner import RowPlan, plan_rows

    kernels, models, impls, dtypes = select(args)
    if args.shapes:
        tokens = selected_tokens(args, kernels, models)
        plans = plan_rows(kernels, models, impls, dtypes, quick=args.quick, tokens=tokens)
        if args.only is not None:
            from harness.coverage import GATE_REASONS

            # `untimed` rows passed the gate already
            return only_todo(plans, args.only, GATE_REASONS, "rows to gate", "check"), [m.name for m in models]
        if not plans:
            raise UsageError("nothing to check: no model in the selection uses the selected kernels "
                             f"(kernels: {', '.join(kernels)}; models: {', '.join(m.name for m in models)})")
        return plans, [m.name for m in models]
    if args.quick or args.tokens or args.only:  # check cases have no regimes or token counts: say so, not ignore
        flag = "--quick" if args.quick else "--tokens" if args.tokens else "--only"
        raise UsageError(f"{flag} picks model shapes: add --shapes (without it `harness check` runs each spec's "
                         "check_cases())")
    plans = []
    for k in kernels:
        spec = registry.specs()[k]
        for case in spec.check_cases():
            for dtype in spec.dtypes:
                if dtypes is not None and dtype not in dtypes:
                    continue
                for p in registry.providers(k):
                    if impls is None or p in impls:
                        plans.append(RowPlan(k, spec.category, p, case.model, case.regime, dict(case.params), dtype))
    if not plans:
        raise UsageError("nothing to check: no spec defines check_cases() for the selection")
    return plans, []


SHAPE_CHECK_STATUSES = ("ok", "incorrect", "error", "timeout", "unavailable")


def shape_check_summary(rows: list[dict[str, Any]]) -> list[str]:
    """One line per kernel x provider of a --shapes check: its rows by status, and the first failing row."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kernel"], r["impl"]), []).append(r)
    lines = []
    for (kernel, impl), rs in sorted(groups.items()):
        n = {s: sum(r["status"] == s for r in rs) for s in SHAPE_CHECK_STATUSES}
        # a timeout is rare and reads as an error otherwise: named only when there is one
        counts = ", ".join(f"{s} {n[s]}" for s in SHAPE_CHECK_STATUSES if s != "timeout" or n[s])
        line = f"{kernel} {impl}: {len(rs)} rows: {counts}"
        bad = next((r for r in rs if r["status"] in ("incorrect", "error", "timeout")), None)
        if bad is not None:
            line += (f"; first failing: {bad['model']} {bad['regime']} {bad['shape']} {bad['dtype']}: "
                     f"{(bad.get('error') or '')[:160]}")
        lines.append(line)
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    import torch

    from harness.runner import Runner, RunOptions

    if args.from_run:  # rebuild the matrix of a check run (e.g. one stopped by a time limit), no GPU
        run_dir = Path(args.from_run)
        from harness.results import read_metadata

        if read_metadata(run_dir).get("check_shapes"):
            raise UsageError(f"--from-run {run_dir}: a --shapes check (model shapes); availability.csv is built "
                             "from check_cases() runs only")
        # a check stopped by a time limit is what --from-run is for: its finished rows count
        matrix = write_availability(read_rows(run_dir, allow_incomplete=True), run_dir.parent, read_metadata(run_dir))
        print(f"availability of {len(matrix)} kernel x provider pairs -> {run_dir.parent / 'availability.csv'}",
              file=sys.stderr)
        return 0
    # --all is the default selection (everything); --kernel/--category/--impl/--dtype/--model given with it still
    # narrow it, so `make check ARGS="--shapes --impl helion --quick"` checks the Helion ports only
    plans, models = _check_plans(args)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("no CUDA GPU visible (torch.cuda.is_available() is False): `harness check` runs the "
                         "upstream kernels on a GPU")
    # providers whose first calls autotune (fla) go last, so a time-limited sweep loses the fewest rows
    # (with --jobs they go first instead: the longest groups start early and the slots finish together)
    slow = ("fla", "gated-delta-net")
    plans.sort(key=lambda p: (p.impl in slow) != (args.jobs > 1))
    meta = environment(device)
    out_root = Path(args.out) if args.out else RESULTS_DIR / meta["gpu_slug"]
    suffix = "-check-shapes" if args.shapes else "-check"
    run_id = new_run_dir(out_root, dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + suffix).name
    meta.update(seed=args.seed, command=" ".join(shlex.quote(a) for a in sys.argv), run_id=run_id, check_only=True,
                token_dims=token_dims(sorted({p.kernel for p in plans})))
    if args.shapes:  # what bench records of its selection, so the run reads like a bench run's rows
        meta.update(check_shapes=True, quick=args.quick,
                    selection={"kernels": sorted({p.kernel for p in plans}), "models": models,
                               "impls": _split(args.impl), "dtypes": _split(args.dtype),
                               "tokens": parse_tokens(args.tokens)})
    writer = RunWriter(out_root / run_id, meta, planned_rows=len(plans))
    print(f"{len(plans)} rows -> {out_root / run_id}", file=sys.stderr)
    runner = Runner(writer, RunOptions(device=device, seed=args.seed, timeout_s=args.timeout,
                                       first_timeout_s=args.first_timeout, check_only=True,
                                       share_process=args.share_process, jobs=args.jobs,
                                       gpus=tuple(g for g in (args.gpus or "").split(",") if g)))
    runner.run(plans)
    meta["upstreams"] = {k: v for k, v in runner.versions.items() if k not in ("helion", "torch", "triton")}
    writer.finish()
    if args.shapes:  # availability.csv/.md is the check_cases() matrix: model-shape rows would blur it
        rows = read_rows(out_root / run_id)
        counts = {s: sum(r["status"] == s for r in rows) for s in SHAPE_CHECK_STATUSES}
        print(f"shape check: {len(rows)} rows: " + ", ".join(f"{s} {n}" for s, n in counts.items() if n)
              + " (availability.csv not touched)", file=sys.stderr)
        for line in shape_check_summary(rows):
            print("  " + line, file=sys.stderr)
        print(f"RUN_DIR={out_root / run_id}")
        return 0
    matrix = write_availability(read_rows(out_root / run_id), out_root, meta)
    counts = {s: sum(m["status"] == s for m in matrix) for s in ("pass", "fail", "unavailable")}
    print(f"availability: {counts} -> {out_root / 'availability.csv'}", file=sys.stderr)
    print(f"RUN_DIR={out_root / run_id}")
    return 0


def _provider_state(kernel: str, provider: str, gpu: str | None) -> tuple[str, str, str]:
    """(tree, here, reason) of one provider: is the pinned upstream tree there, and can it run on this machine?

    The tree is checked without importing anything (the loader only looks for the folder / zip / installed
    dist); the import is tried only when the tree is there, so a missing tree never reads as "no GPU"."""
    if provider == registry.HELION:
        return "port", "no GPU" if gpu else "yes", gpu or ""
    try:
        impl = registry.get_impl(kernel, provider)
    except Exception as e:  # noqa: BLE001 - a broken adapter module is a row, not a crash
        return "?", "broken", f"{type(e).__name__}: {e}"
    package = getattr(impl, "package", None)
    if package:
        from upstream_adapters._loader import load

        try:
            up = load(package)
        except Exception as e:  # noqa: BLE001
            return "?", "broken", f"{type(e).__name__}: {e}"
        if up.unavailable:
            return "missing", "no", up.unavailable
    reason = impl.import_reason() if hasattr(impl, "import_reason") else None
    if reason:
        return "present", "import fails", reason
    return "present", "no GPU" if gpu else "yes", gpu or ""


def cmd_list(args: argparse.Namespace) -> int:
    """kernel x provider: is the upstream tree here, can it run here, and the last status in a committed run.
    Works on any machine: no GPU and no upstream tree needed (missing ones are named, with the command)."""
    import torch

    specs = registry.specs()
    last: dict[tuple[str, str], str] = {}
    for run in list_runs():
        try:
            rows = read_rows(run, allow_incomplete=True)
        except ValueError:
            continue  # a broken committed run must not break the listing; `report` names its problem
        for r in rows:
            last[(r["kernel"], r["impl"])] = r["status"]
    gpu = None if torch.cuda.is_available() else "no CUDA GPU on this machine (make bench/check need one)"
    print(f"{'kernel':<28} {'category':<10} {'catalog':<8} {'provider':<16} {'tree':<8} {'runs here':<13} "
          "last status")
    problems: dict[str, str] = {}
    counts: dict[str, int] = {}
    for k in sorted(specs, key=lambda k: (specs[k].category, k)):
        s = specs[k]
        for p in registry.providers(k):
            tree, here, reason = _provider_state(k, p, gpu)
            counts[tree] = counts.get(tree, 0) + 1
            if tree != "present" and tree != "port" or here in ("import fails", "broken"):
                problems.setdefault(f"{p}: {reason}", k)
            rows = ",".join(map(str, s.catalog_rows))
            print(f"{k:<28} {s.category:<10} {rows:<8} {p:<16} {tree:<8} {here:<13} {last.get((k, p), '-')}")
    print()
    print("upstream trees: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())))
    if gpu:
        print(f"GPU: {gpu}")
    for text in sorted(problems):
        print(text)
    for mod, reason in sorted(registry.BROKEN.items()):
        print(f"{mod}: not loaded: {reason}")
    return 0


def needed_upstreams(kernels: Sequence[str], impls: Sequence[str] | None) -> list[str]:
    """Lock entry names (upstreams.lock) the upstream adapters of `kernels` (only the providers in `impls`, when
    given) import, with the entries those require: what a GPU box without internet must carry for that selection."""
    from upstream_adapters._loader import read_lock

    lock = read_lock()
    names: set[str] = set()

    def add(name: str) -> None:
        entry = lock.entry(name)
        if entry.name not in names:
            names.add(entry.name)
            for req in entry.requires:
                add(req)

    for k in kernels:
        for p in registry.providers(k):
            if impls is not None and p not in impls:
                continue
            package = getattr(registry.get_impl(k, p), "package", "")
            if package:
                add(package)
    return sorted(names)


def cmd_upstreams(args: argparse.Namespace) -> int:
    """The upstream trees a selection needs, one lock name a line (`scripts/device_bench.sh pack-carry` reads them)."""
    kernels, _models, impls, _dtypes = select(args)
    for name in needed_upstreams(kernels, impls):
        print(name)
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """How far each Helion port is from gated and timed at every model shape: committed runs only, no GPU."""
    from harness import coverage

    print(coverage.report(args.results_dir, gpu=args.gpu, runs=args.runs, quick=args.quick,
                          per_spec=args.per_spec, todo_out=args.todo_out), end="")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    """Compress run folders' plain results.csv / samples.jsonl into .gz (verified before the plain file goes)."""
    runs = args.run or results.list_runs(args.results_dir)
    failed = 0
    for run in runs:
        try:
            line = results.pack_run(run, allow_incomplete=args.allow_incomplete)
        except (RunError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        if not line.endswith("already packed"):
            print(line)
    return 2 if failed else 0


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--category", help="catalog category (e.g. moe) or all")
    p.add_argument("--kernel", help="comma-separated spec ids")
    p.add_argument("--model", help="comma-separated shapes/<model>.yaml stems")
    p.add_argument("--impl", help="comma-separated providers (vllm, sglang, helion, ...)")
    p.add_argument("--dtype", help="comma-separated dtypes (e.g. bf16,fp8_w8a8_block128)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="correctness gate + timing sweep; writes results/<gpu>/<run-id>/")
    _add_selection(b)
    b.add_argument("--quick", action="store_true", help="the regimes.quick subset of each model")
    b.add_argument("--tokens", help="only these token counts (comma-separated), e.g. 1,32,2048")
    b.add_argument("--only", type=Path, metavar="FILE", help="only the shapes of this todo list (`harness coverage "
                   "--todo-out FILE`: rows not yet gated and timed on the current port), every selected provider")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", help="folder to create the run folder in (default results/<gpu-slug>)")
    b.add_argument("--timeout", type=float, default=180.0, help="per-row limit, seconds")
    b.add_argument("--first-timeout", type=float, default=420.0,
                   help="limit for a worker's first row (imports, compile, autotune), seconds")
    b.add_argument("--target-s", type=float, default=0.3, help="device-timing budget per row, seconds")
    b.add_argument("--no-graph", action="store_true", help="time direct launches with events (no CUDA graph)")
    b.add_argument("--no-ceilings", action="store_true", help="skip measuring copy/matmul ceilings")
    b.add_argument("--no-report", action="store_true", help="do not render speedup.md / plots after the run")
    b.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="cpu exists only for the harness's own tests (interpret mode)")
    b.add_argument("--gpus", help="comma-separated CUDA device ids timed at once, one worker each, e.g. 0,1,2,3; "
                   "every provider of a (kernel, model) on the same GPU")
    b.add_argument("--shard", help="i/n (0 <= i < n): run only shard i of the plan cut into n (whole (kernel, model) "
                   "groups, balanced by expected cost); `harness merge` joins the shards' runs")
    b.add_argument("--max-s", type=float, metavar="SECONDS", help="run only whole shapes (every provider) whose "
                   "expected cost fits SECONDS, taken round robin over the kernels (costs: --costs-from)")
    b.add_argument("--dry-run", action="store_true", help="print the plan (after --only, --shard, --max-s): rows, "
                   "shapes and expected seconds per kernel from the committed row costs, then exit; no GPU needed, "
                   "nothing written")
    b.add_argument("--gpu-slug", metavar="SLUG", help="with --dry-run: whose committed row costs (a folder under "
                   "results/; default the one with the newest run)")
    b.add_argument("--costs-from", metavar="RUN|none", help="expected row costs for balancing: this run's "
                   "row_cost_s (default: per kernel, the newest committed run of this GPU that measured it; "
                   "none: equal costs)")
    b.set_defaults(func=cmd_bench)
    c = sub.add_parser("check", help="correctness-only sweep, one small shape per kernel -> availability.csv "
                       "(--shapes: every model shape, no availability.csv)")
    _add_selection(c)
    c.add_argument("--all", action="store_true",
                   help="every kernel and provider (the default; --kernel/--category/--impl/--dtype/--model narrow it)")
    c.add_argument("--shapes", action="store_true",
                   help="check at the model shapes bench would time (shapes/*.yaml; --model, --quick, --tokens) "
                   "instead of check_cases(); run id *-check-shapes, availability.csv not touched")
    c.add_argument("--quick", action="store_true", help="with --shapes: the regimes.quick subset of each model")
    c.add_argument("--tokens", help="with --shapes: only these token counts (comma-separated), e.g. 1,32,2048")
    c.add_argument("--only", type=Path, metavar="FILE", help="with --shapes: only the rows of this todo list "
                   "(`harness coverage --todo-out FILE`: the rows not yet gated on the current port)")
    c.add_argument("--from-run", help="only rebuild availability.csv/.md from this check run's results.csv")
    c.add_argument("--share-process", action="store_true",
                   help="one worker per provider (faster imports, weaker isolation between kernels)")
    c.add_argument("--jobs", type=int, default=1,
                   help="kernel x provider workers at once (correctness only, so they may share a GPU)")
    c.add_argument("--gpus", help="comma-separated CUDA device ids the job slots take round robin, e.g. 0,1")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="folder for availability.csv/.md and the run (default results/<gpu-slug>)")
    c.add_argument("--timeout", type=float, default=120.0)
    c.add_argument("--first-timeout", type=float, default=300.0)
    c.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="cpu exists only for the harness's own tests")
    c.set_defaults(func=cmd_check)
    ls = sub.add_parser("list", help="kernel x provider availability matrix")
    ls.set_defaults(func=cmd_list)
    up = sub.add_parser("upstreams", help="the upstream trees (upstreams.lock names) a selection's adapters import, "
                        "one a line: what to carry to a GPU box without internet")
    _add_selection(up)
    up.set_defaults(func=cmd_upstreams)
    cv = sub.add_parser("coverage", help="per category: Helion rows gated and timed against the best upstream, of "
                        "every model shape a full bench plans, from the committed runs of one GPU (no GPU needed)")
    cv.add_argument("--gpu", metavar="SLUG", help="results/<SLUG> (default: the only GPU folder, else the one with "
                    "the newest run)")
    cv.add_argument("--quick", action="store_true", help="plan the regimes.quick subsets (make bench-quick)")
    cv.add_argument("--runs", nargs="+", metavar="RUN", help="only these run folders (paths, or run ids under "
                    "results/<gpu>)")
    cv.add_argument("--per-spec", action="store_true", help="add the same table per spec")
    cv.add_argument("--todo-out", type=Path, metavar="FILE", help="also write the planned rows not yet gated and "
                    "timed on the current port (missing, failing, stale, untimed) as CSV, for `harness check --shapes "
                    "--only FILE` (the first three) and `harness bench --only FILE` (all)")
    cv.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=argparse.SUPPRESS)
    cv.set_defaults(func=cmd_coverage)
    pk = sub.add_parser("pack", help="compress the plain results.csv / samples.jsonl of run folders into their .gz "
                        "forms (runs finished before bench wrote them compressed); nothing else changes")
    pk.add_argument("run", nargs="*", type=Path, help="run folders (default: every run under results/)")
    pk.add_argument("--allow-incomplete", action="store_true", help="also pack runs without a completion mark "
                    "(stopped runs; never one a sweep is still writing)")
    pk.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=argparse.SUPPRESS)
    pk.set_defaults(func=cmd_pack)
    for name in ("report", "compare", "merge"):
        p = sub.add_parser(name, help=f"see `harness {name} --help`", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("report", "compare", "merge"):
        import importlib

        return importlib.import_module(f"harness.{argv[0]}").main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ShapeError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
