"""GPU probe (run on a GPU from the repo root): a tile grid for each GEMM of the fused_moe port, per model shape,
timed through the harness's one timer, compiled in parallel.

    PYTHONPATH=. python scripts/probes/fused_moe_tiles.py llama4-scout:1:bf16 deepseek-v3:8:fp8_w8a8_block128 \
        [--workers 10] [--out probe.jsonl]

Each argument names a model shape file, a token count and a dtype.  For every GEMM kernel of the port (gate-up,
down) and every routing block (`block_m`: the default and its neighbours) a grid of tile / warp / stage choices
is compiled and that kernel alone is timed (CUDA graph, L2 flushed; its input buffers hold whatever the previous
launch left, which does not change a GEMM's time).  The fp8 gate-up also tries every choice with its activation
quant fused (`fuse_quant`, one launch instead of two), so its times are quant + gate-up for the unfused choices
and the fused kernel alone for the fused ones (each kernel's `timed` field says so).  The fastest choice per
kernel is then put together with the port's other kernels at their defaults, gated against the spec's reference
and timed as a whole next to the defaults.  One process per shape: compiles run side by side, every GPU section
(routing, timing, gate) holds one file lock, so no two timings overlap.  Prints one JSON line per shape; nothing
is written under results/.

    python scripts/probes/fused_moe_tiles.py --save-from probe.jsonl [--min-gain 0.02] [--force]

(no GPU) writes the gated winners of a probe's JSON lines to ports/configs/<gpu>/fused_moe.json, one entry per
shape bucket, where they beat the defaults of the probed commit by --min-gain; a bucket that already has an entry
(e.g. from `make tune`) is kept unless --force.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import Any

LOCK = "/tmp/fused_moe_tiles.lock"


@contextmanager
def gpu_lock():
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def grid(kernel: str, bm: int, dims: dict[str, int], fp8: bool) -> list[dict[str, Any]]:
    """Candidate Helion config fields for one GEMM kernel at routing block `bm` (block_m is added by the caller;
    the fp8 gate-up's come twice, the second time with the host key fuse_quant)."""
    n, k = dims["N"], dims["K"]
    gate_up = "gate_up" in kernel
    out_dim = n if gate_up else k
    red_dim = k if gate_up else n
    if bm <= 32:  # decode: weight streaming; small output tiles, deep pipelines
        outs = [16, 32, 64, 128] if gate_up else [32, 64, 128, 256]
        reds = [128, 256]
        ws = [(4, 3), (4, 4), (4, 6)]
    else:
        outs = [32, 64, 128] if gate_up else [64, 128, 256]
        # the down GEMM reduces over N (128-512 at these models): a 256-wide step halves its few K-steps
        reds = [64, 128] if gate_up else [64, 128, 256]
        ws = [(4, 3), (8, 3), (8, 4)]
    outs = [b for b in outs if b <= max(16, out_dim)]
    reds = [b for b in reds if b <= max(32, red_dim)]
    cands = []
    for bo in outs:
        for br in ([128] if fp8 else reds):
            for w, s in ws:
                sizes = [bo] if fp8 else [bo, br]
                cands.append({"block_sizes": sizes, "num_warps": w, "num_stages": s, "loop_orders": [[1, 0]]})
    if bm >= 64:  # prefill: the three widest tiles once more on a persistent grid (one program per SM, looping)
        cands += [{**c, "pid_type": "persistent_blocked"} for c in cands if c["num_warps"] == 8][-3:]
    if fp8 and gate_up:  # the same tiles with the activation quant inside the gate-up (a host key of the entry)
        cands += [{"fuse_quant": True, **c} for c in cands]
    return cands


def probe_shape(arg: str, q: Any, deadline: float) -> None:
    try:
        q.put(_probe_shape(arg, deadline))
    except Exception as e:  # noqa: BLE001 - one shape's failure is one line
        q.put({"shape": arg, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})


def _probe_shape(arg: str, deadline: float) -> dict[str, Any]:
    import torch

    from harness.correctness import check_call
    from harness.shapes import load_model
    from harness.timing import time_device
    from ports._port import launcher, split_config
    from ports.moe import fused_moe as fm

    model, m, dtype = arg.split(":")
    impl = fm.IMPL
    spec = impl.spec
    cases = [c for c in spec.cases(load_model(model)) if int(c.params["M"]) == int(m)]
    if not cases:
        raise SystemExit(f"{model} has no fused_moe case with M={m}")
    case = cases[0]
    dims = impl.case_dims(case)
    dev = torch.device(os.environ.get("PROBE_DEVICE", "cuda"))  # cpu: a smoke test in interpret mode
    t_start = time.time()
    with gpu_lock():
        inputs = spec.make_inputs(case, dtype, dev, 0)
        ref = spec.reference(inputs, case, dtype)
        out = spec.make_output(inputs, case, dtype)
        torch.cuda.synchronize()
    defaults = impl.default_configs(dims, dtype)
    fp8 = dtype == fm.FP8
    gemms = fm.GEMM_KERNELS[dtype]
    ladder = [16, 32, 64, 128]

    def timed(fn) -> float:
        with gpu_lock():
            t = time_device([fn], dev, target_s=0.08, min_reps=10)
        return sorted(t.samples_us)[len(t.samples_us) // 2]

    def one_kernel(name: str, entry: dict[str, Any]) -> float | str:
        """Device time of kernel `name` at `entry`, the others at their defaults; the fp8 gate-up together with
        the activation quant launch before it, when there is one (with fuse_quant the gate-up does that work)."""
        configs = {k: dict(v) for k, v in defaults.items()}
        configs[name] = dict(entry)
        with gpu_lock():
            launches = impl.launches(inputs, out, case, dtype, configs)
            torch.cuda.synchronize()
        i = next(j for j, x in enumerate(launches) if x.config_name == name)
        timed_launches = [launches[i]]
        if fp8 and name == gemms[0] and i > 0 and launches[i - 1].kernel is fm.per_token_group_quant_fp8:
            timed_launches.insert(0, launches[i - 1])
        try:
            fns = []
            for ln in timed_launches:
                _, cfg = split_config(configs[ln.config_name], impl.host_keys)
                if ln.adjust is not None:
                    cfg = ln.adjust(cfg)
                fns.append(launcher(ln.kernel, ln.args, cfg))

            def steps() -> None:
                for f in fns:
                    f()

            return timed(steps)
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"

    result: dict[str, Any] = {"shape": arg, "params": dict(case.params), "kernels": {}}
    best: dict[str, dict[str, Any]] = {}
    for n_left, name in zip(range(len(gemms), 0, -1), gemms):
        # each GEMM gets an equal share of the time left, so the down kernel is not starved by the gate-up's grid
        share_end = time.time() + max(0.0, deadline - time.time()) / n_left
        bm0 = defaults[name]["block_m"]
        i = ladder.index(bm0)
        # the default routing block and its neighbours; a bigger block only where experts get that many rows
        per_expert = int(m) * dims["top_k"] / dims["E"]
        bms = [b for b in ladder[max(0, i - 1): i + 2] if b <= bm0 or per_expert >= b / 4]
        d_us = one_kernel(name, defaults[name])
        rows = []
        for bm in bms:
            for c in grid(name, bm, dims, fp8):
                if time.time() > share_end:  # keep what was timed; the whole-call comparison still runs
                    break
                entry = {"block_m": bm, **c}
                us = one_kernel(name, entry)
                rows.append((us, entry))
        ok = [(u, e) for u, e in rows if isinstance(u, float)]
        ok.sort(key=lambda r: r[0])
        best[name] = ok[0][1] if ok and isinstance(d_us, float) and ok[0][0] < d_us else defaults[name]
        timed_as = name
        if fp8 and name == gemms[0]:
            timed_as = f"per_token_group_quant_fp8 + {name} (fuse_quant: {name} alone, quant inside)"
        result["kernels"][name] = {"timed": timed_as, "default_us": d_us, "default": defaults[name],
                                   "top": [{"us": round(u, 2), **e} for u, e in ok[:6]],
                                   "failed": [u for u, _ in rows if not isinstance(u, float)][:3],
                                   "tried": len(rows)}
    # whole call: defaults vs the per-kernel winners, each gated
    for label, configs in (("default", defaults), ("best", {**defaults, **best})):
        with gpu_lock():
            plan = impl.build(inputs, out, case, dtype, configs)
            gate = check_call(plan, out, ref, spec.tolerance(dtype))
            t = time_device([plan], dev, target_s=0.2)
        result[label] = {"us": round(t.median_us, 2), "gate": "ok" if gate.ok else f"FAIL {gate.reason}"}
    result["best_configs"] = {k: best[k] for k in gemms}
    result["dtype"], result["gpu"] = dtype, torch.cuda.get_device_name()
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["probe_s"] = round(time.time() - t_start, 1)
    return result


def save_from(path: str, min_gain: float, force: bool, gpu: str | None) -> int:
    """Write the probe's gated winners as shipped config entries (see the module docstring)."""
    from harness.results import gpu_slug
    from harness.shapes import load_model
    from ports import _configs
    from ports.moe import fused_moe as fm

    saved = 0
    for n, line in enumerate(open(path), 1):
        r = json.loads(line)
        where = f"{path}:{n} {r.get('shape')}"
        if "error" in r or r.get("best", {}).get("gate") != "ok":
            print(f"{where}: skipped (no gated winner)")
            continue
        gain = r["default"]["us"] / r["best"]["us"] - 1
        if gain < min_gain:
            print(f"{where}: skipped (winner {gain:+.1%} vs the defaults)")
            continue
        model, m, dtype = r["shape"].split(":")
        case = next(c for c in fm.IMPL.spec.cases(load_model(model)) if int(c.params["M"]) == int(m))
        dims = fm.IMPL.case_dims(case)
        slug = gpu or gpu_slug(r["gpu"])
        key = _configs.bucket_key(dims, dtype, fm.IMPL.bucket_dim())
        if key in _configs.load_file(fm.KERNEL, slug) and not force:
            print(f"{where}: kept the existing entry {key} (--force replaces it)")
            continue
        provenance = {"source": "scripts/probes/fused_moe_tiles.py tile grid, winners gated, timed as a whole",
                      "tuned_on": f"{model} M={m}", "total_us": r["best"]["us"],
                      "default_total_us": r["default"]["us"], "gpu": r.get("gpu"), "date": r.get("date")}
        with _configs.locked(fm.KERNEL, slug):
            _configs.save(fm.KERNEL, slug, dims, dtype, r["best_configs"], provenance, fm.IMPL.bucket_dim())
        print(f"{where}: saved {key} ({r['best']['us']} us vs default {r['default']['us']} us)")
        saved += 1
    print(f"{saved} entr{'y' if saved == 1 else 'ies'} written")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shapes", nargs="*", help="model:M:dtype")
    ap.add_argument("--save-from", metavar="JSONL", help="write a probe's gated winners to ports/configs (no GPU)")
    ap.add_argument("--min-gain", type=float, default=0.02, help="with --save-from: the least gain over defaults")
    ap.add_argument("--force", action="store_true", help="with --save-from: replace existing entries")
    ap.add_argument("--gpu", help="with --save-from: the GPU slug (default: from each line's gpu name)")
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--out", default=None, help="also append the JSON lines here")
    ap.add_argument("--deadline-s", type=float, default=1e9,
                    help="stop trying grid points after this many seconds (each shape still reports)")
    args = ap.parse_args(argv)
    if args.save_from:
        return save_from(args.save_from, args.min_gain, args.force, args.gpu)
    if not args.shapes:
        ap.error("name at least one model:M:dtype (or --save-from JSONL)")
    os.environ.setdefault("HELION_AUTOTUNE_BENCHMARK_SUBPROCESS", "0")
    deadline = time.time() + args.deadline_s
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pending = list(args.shapes)
    procs: dict[str, Any] = {}
    got: set[str] = set()
    while len(got) < len(args.shapes):
        while pending and len(procs) - len(got) < args.workers:
            shape = pending.pop(0)
            procs[shape] = ctx.Process(target=probe_shape, args=(shape, q, deadline))
            procs[shape].start()
        try:
            res = q.get(timeout=5)
        except Exception:  # noqa: BLE001 - queue.Empty: look for a worker that died without a result
            for shape, p in procs.items():
                if shape not in got and not p.is_alive() and q.empty():
                    res = {"shape": shape, "error": f"worker exited {p.exitcode} without a result"}
                    break
            else:
                continue
        got.add(res["shape"])
        line = json.dumps(res)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
