"""Refresh the shipped Helion configs: autotune a port per shape bucket on this GPU, write ports/configs.

    python scripts/tune.py --kernel fused_moe [--model qwen3-235b-a22b] [--dtype bf16] [--budget-s 120]
    python scripts/tune.py --kernel fused_moe --model qwen3-235b-a22b --dry-run     # list buckets, no GPU

For every model shape file that uses the kernel, the spec's `cases()` are grouped by the port's config bucket
(`ports/_configs.bucket_key`: dtype, the fixed dims, the token count rounded up to a bucket); each bucket is
tuned once, on its largest case, by the port's `tune(inputs, case, dtype, budget_s)` hook, which returns
(configs by Helion kernel name, provenance).  The result is checked against the spec reference with the
harness checker before `ports/_configs.save` writes it to `ports/configs/<gpu>/<kernel>.json`; a config that
fails the check is not written.  Buckets that already have an entry are skipped unless --force.

Helion reads its settings from the environment when the port module is imported, so this script sets
HELION_AUTOTUNE_EFFORT=quick, HELION_AUTOTUNE_BENCHMARK_SUBPROCESS=0 and HELION_AUTOTUNE_BUDGET_SECONDS
before importing anything that imports helion.  --budget-s is per bucket; the port splits it over its
autotune runs (ports/_port.HelionPort.tune: one run per launched kernel and host candidate, e.g. fused_moe's
2 block_m candidates per GEMM).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", required=True, help="spec id, e.g. fused_moe")
    ap.add_argument("--model", action="append", help="shapes/<model>.yaml stem (repeatable; default: all)")
    ap.add_argument("--dtype", action="append", help="dtype (repeatable; default: every dtype the port has)")
    ap.add_argument("--m", type=int, action="append", help="only cases with this token count (repeatable)")
    ap.add_argument("--budget-s", type=float, default=120.0, help="autotune seconds per bucket (default 120)")
    ap.add_argument("--quick", action="store_true", help="the models' quick token subsets")
    ap.add_argument("--force", action="store_true", help="re-tune buckets that already have an entry")
    ap.add_argument("--max-total-s", type=float, default=None,
                    help="start no bucket that could end after this many seconds (a time-limited GPU call keeps "
                         "every bucket it finished)")
    ap.add_argument("--worst-first", metavar="RUN_DIR",
                    help="tune buckets in order of the port's time / the best upstream's time in this committed "
                         "run (slowest first); buckets the run did not measure go last")
    ap.add_argument("--dry-run", action="store_true", help="list the buckets and exit (no GPU needed)")
    return ap.parse_args(argv)


def set_helion_env(budget_s: float) -> None:
    """Must run before helion is imported (it reads these when a kernel is decorated)."""
    os.environ["HELION_AUTOTUNE_EFFORT"] = "quick"
    os.environ["HELION_AUTOTUNE_BENCHMARK_SUBPROCESS"] = "0"
    os.environ["HELION_AUTOTUNE_BUDGET_SECONDS"] = str(max(1, int(budget_s)))
    os.environ.pop("HELION_INTERPRET", None)


def plan_buckets(kernel: str, models: list[str] | None, dtypes: list[str] | None, ms: list[int] | None,
                 quick: bool, port_dtypes: tuple[str, ...] | None, case_dims) -> list[tuple[str, str, object]]:
    """[(bucket key, dtype, representative case)], one per bucket, the largest-M case of each."""
    from harness import registry
    from harness.shapes import available_models, load_model
    from ports import _configs

    spec = registry.specs()[kernel]
    tdim = spec.token_dim

    def tokens(case) -> int:
        return int(case.params[tdim]) if tdim else 0

    wanted = dtypes or [d for d in spec.dtypes if port_dtypes is None or d in port_dtypes]
    unknown = [d for d in wanted if d not in spec.dtypes]
    if unknown:
        raise SystemExit(f"unknown dtype(s) {unknown} for {kernel}; valid: {', '.join(spec.dtypes)}")
    buckets: dict[str, tuple[str, object]] = {}
    for model in models or available_models():
        for case in spec.cases(load_model(model), quick=quick):
            if ms and tokens(case) not in ms:
                continue
            for dtype in wanted:
                if spec.invalid_reason(case, dtype):  # e.g. fp8 block 128 with N=192: the bench never runs it
                    continue
                key = _configs.bucket_key(case_dims(case), dtype, tdim)
                prev = buckets.get(key)
                if prev is None or tokens(case) > tokens(prev[1]):
                    buckets[key] = (dtype, case)
    rows = [(key, dtype, case) for key, (dtype, case) in buckets.items()]
    return sorted(rows, key=lambda r: (r[1], r[2].model, tokens(r[2])))


def order_worst_first(plan: list[tuple[str, str, object]], run_dir: Path, kernel: str,
                      case_dims) -> list[tuple[str, str, object]]:
    """`plan` sorted by the Helion port's median / the fastest upstream's median in `run_dir` (worst bucket
    first; a bucket's ratio is its worst case's); buckets without both measured keep their order, last."""
    import json

    from harness import registry
    from harness.results import read_rows
    from harness.spec import Case
    from ports import _configs

    best_up: dict[tuple[str, str, str], float] = {}
    port: dict[tuple[str, str, str], tuple[float, dict]] = {}
    for r in read_rows(run_dir):
        if r["kernel"] != kernel or r["status"] != "ok" or r.get("median_us") is None:
            continue
        k = (r["model"], r["shape"], r["dtype"])
        if r["impl"] == registry.HELION:
            port[k] = (float(r["median_us"]), json.loads(r["shape"]))
        else:
            best_up[k] = min(best_up.get(k, float("inf")), float(r["median_us"]))
    ratio: dict[str, float] = {}
    for k, (us, params) in port.items():
        if k in best_up:
            key = _configs.bucket_key(case_dims(Case(k[0], "", params)), k[2], registry.specs()[kernel].token_dim)
            ratio[key] = max(ratio.get(key, 0.0), us / best_up[k])
    return sorted(plan, key=lambda row: -ratio.get(row[0], -1.0))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run:
        set_helion_env(args.budget_s)

    from harness import registry
    from ports import _configs

    spec = registry.specs().get(args.kernel)
    if spec is None:
        raise SystemExit(f"unknown kernel {args.kernel!r}; valid: {', '.join(sorted(registry.specs()))}")
    port_name = registry.port_module(spec)
    if port_name is None:
        raise SystemExit(f"{args.kernel} has no Helion port (ports/{spec.category}/{spec.id}.py)")

    if args.dry_run:
        # bucket keys from the port's dims if it is importable, else the case params
        try:
            port = importlib.import_module(port_name)
            case_dims, port_dtypes = port.IMPL.case_dims, port.IMPL.dtypes
        except ImportError:
            case_dims, port_dtypes = (lambda c: dict(c.params)), None
        gpu = _configs.gpu_slug_here()
        gpu = "h100" if gpu == "cpu" else gpu  # the shipped target when listing from a laptop
    else:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("tune.py needs a CUDA GPU (use --dry-run to list buckets)")
        port = importlib.import_module(port_name)
        case_dims = port.IMPL.case_dims
        port_dtypes = port.IMPL.dtypes
        gpu = _configs.gpu_slug_here()

    plan = plan_buckets(args.kernel, args.model, args.dtype, args.m, args.quick, port_dtypes, case_dims)
    if args.worst_first:
        plan = order_worst_first(plan, Path(args.worst_first), args.kernel, case_dims)
    existing = _configs.load_file(args.kernel, gpu)
    todo = [(k, d, c) for k, d, c in plan if args.force or k not in existing]
    print(f"{args.kernel}: {len(plan)} bucket(s), {len(todo)} to tune on {gpu}, "
          f"~{len(todo) * args.budget_s / 60:.0f} min of autotuning at --budget-s {args.budget_s:g}")
    for key, dtype, case in plan:
        state = "tune" if (key, dtype, case) in todo else "have"
        print(f"  [{state}] {key}  <- {case.model} {case.label()}")  # type: ignore[attr-defined]
    if args.dry_run or not todo:
        return 0

    import torch

    from harness.correctness import check_call

    device = torch.device("cuda")
    failed = 0
    t_start = time.time()
    for n_done, (key, dtype, case) in enumerate(todo):
        t0 = time.time()
        # a bucket takes about its budget plus compiles; stop before one would overrun the caller's limit
        if args.max_total_s is not None and t0 - t_start + 1.5 * args.budget_s > args.max_total_s:
            print(f"stopping: --max-total-s {args.max_total_s:g} reached after {n_done} of {len(todo)} bucket(s); "
                  f"the rest keep their current entries / the port defaults", flush=True)
            break
        print(f"== {key} ({case.model}, {case.label()})", flush=True)  # type: ignore[attr-defined]
        inputs = spec.make_inputs(case, dtype, device, seed=0)
        configs, provenance = port.IMPL.tune(inputs, case, dtype, args.budget_s)
        total, default_total = provenance.get("total_us"), provenance.get("default_total_us")
        if total is not None and default_total is not None and total >= default_total:
            # per-kernel wins that do not add up (seen on the H100: fp8 M=1, 388 us tuned vs 172 us default)
            configs = {}
            provenance = {**provenance, "kept": f"port defaults: tuned total {total} us >= default {default_total} us"}
        provenance = {
            **provenance,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "gpu": torch.cuda.get_device_name(),
            "helion": importlib.metadata.version("helion"),
            "torch": torch.__version__,
            "triton": importlib.metadata.version("triton"),
            "tuned_on": f"{case.model} {case.label()}",  # type: ignore[attr-defined]
            "tune_s": round(time.time() - t0, 1),
        }
        with _configs.locked(args.kernel, gpu):  # another tune process (other GPU) may write the same file
            previous = _configs.load_file(args.kernel, gpu).get(key)
            _configs.save(args.kernel, gpu, case_dims(case), dtype, configs, provenance, spec.token_dim)
            # verify what prepare() will now load, through the harness checker
            out = spec.make_output(inputs, case, dtype)
            prepared = port.IMPL.prepare(inputs, out, case, dtype)
            res = check_call(prepared.fn, out, spec.reference(inputs, case, dtype), spec.tolerance(dtype))
            if not res.ok:
                data = _configs.load_file(args.kernel, gpu)
                if previous is None:
                    data.pop(key, None)
                else:
                    data[key] = previous
                _configs.save_all(args.kernel, gpu, data)
        if not res.ok:
            failed += 1
            print(f"   FAILED check ({res.reason}); entry not kept", flush=True)
        else:
            print(f"   ok rel_err={res.rel_err:.2e}  {provenance.get('total_us')} us "
                  f"(default {provenance.get('default_total_us')} us)  [{time.time() - t0:.0f}s]", flush=True)
        del inputs
        torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
