"""Plans a sweep and runs it, one worker process per (kernel, provider), each row isolated.

Kernels of one provider do not share a process by default: the loader's parent-package stand-ins that one
adapter installs can break another adapter's imports (seen on the H100: a stubbed
`vllm.model_executor.layers.quantization` hid `QuantizationMethods` from later vLLM kernels), so sharing
(`RunOptions.share_process`) trades that isolation for paying imports once.

Timed sweeps run one group after another on one GPU, or with `RunOptions.gpus` on several at once: one timing
worker per GPU, every provider of a (kernel, model) on the same GPU (a speedup never mixes GPUs), the groups
spread over the GPUs by expected cost (`partition`, which also cuts a plan into `--shard`s).

A row that raises becomes `error`; a row that hangs past its deadline becomes `timeout` and its worker is
killed; a worker that dies (segfault, CUDA abort) costs the row in flight, `error` with the exit cause; in
both cases a new worker picks up the remaining rows.  Every row is written the moment it is known.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from harness import registry
from harness.results import RunWriter, row_key
from harness.shapes import ModelShapes
from harness.worker import MARK

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class RowPlan:
    kernel: str
    category: str
    impl: str
    model: str
    regime: str
    params: dict[str, Any]
    dtype: str

    def base_row(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "category": self.category, "impl": self.impl, "model": self.model,
                "regime": self.regime, "shape": json.dumps(self.params, sort_keys=True, separators=(",", ":")),
                "dtype": self.dtype}


@dataclasses.dataclass
class RunOptions:
    device: str = "cuda"
    seed: int = 0
    timeout_s: float = 180.0  # per row, steady state
    first_timeout_s: float = 420.0  # the first row of a worker also pays imports, JIT compile, autotune
    target_s: float = 0.3  # device-timing budget per row
    use_graph: bool = True
    recheck_seed: bool = True
    check_only: bool = False  # `harness check`: correctness gate only
    share_process: bool = False  # one worker per provider instead of per (kernel, provider)
    #: worker groups run at once (`harness check` only: concurrent kernels would disturb each other's timings)
    jobs: int = 1
    #: CUDA_VISIBLE_DEVICES values. check: per job slot, round robin (e.g. ["0", "1"] spreads a check over two
    #: GPUs); bench: one timing worker per GPU, all at once, each (kernel, model) on one of them
    gpus: tuple[str, ...] = ()
    #: expected wall seconds per row by kernel (a committed run's `row_cost_s`): how groups are spread over GPUs
    expected_row_cost_s: dict[str, float] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)


def plan_rows(kernels: list[str], models: list[ModelShapes], impls: list[str] | None, dtypes: list[str] | None,
              quick: bool, tokens: list[int] | None = None) -> list[RowPlan]:
    rows = []
    for k in kernels:
        spec = registry.specs()[k]
        provs = [p for p in registry.providers(k) if impls is None or p in impls]
        for m in models:
            for case in spec.cases(m, quick=quick):
                n = None if spec.token_dim is None else int(case.params[spec.token_dim])
                if tokens is not None and n is not None and n not in tokens:  # no token axis: not filtered
                    continue
                for dtype in spec.dtypes:
                    if dtypes is not None and dtype not in dtypes:
                        continue
                    for p in provs:
                        rows.append(RowPlan(k, spec.category, p, case.model, case.regime, dict(case.params), dtype))
    return rows


def token_counts(kernels: list[str], models: list[ModelShapes], quick: bool) -> set[int]:
    """Every token count the selection plans (each spec's `token_dim` over its cases): what --tokens may pick."""
    out: set[int] = set()
    for k in kernels:
        spec = registry.specs()[k]
        if spec.token_dim is None:
            continue
        for m in models:
            for case in spec.cases(m, quick=quick):
                out.add(int(case.params[spec.token_dim]))
    return out


#: expected wall seconds per row for a kernel no committed run measured (issue 13: ~1.65 s a row on the H200)
DEFAULT_ROW_COST_S = 1.65


def group_of(row: RowPlan) -> tuple[str, str]:
    """The unit that never splits across GPUs or shards: every provider of one (kernel, model)."""
    return (row.kernel, row.model)


def row_cost(expected: Mapping[str, float] | None) -> Callable[[RowPlan], float]:
    """Expected seconds of a row: its kernel's measured mean, else the mean over measured kernels, else
    DEFAULT_ROW_COST_S."""
    known = {k: float(v) for k, v in (expected or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0}
    default = sum(known.values()) / len(known) if known else DEFAULT_ROW_COST_S
    return lambda r: known.get(r.kernel, default)


def partition(rows: Sequence[RowPlan], n: int, cost: Callable[[RowPlan], float]) -> list[list[RowPlan]]:
    """`rows` cut into `n` bins of whole (kernel, model) groups with about equal expected cost: the costliest
    group first, each into the lightest bin so far (ties: the lower index). Deterministic (no clock, no hash
    order): the same plan and costs give the same bins on every node, disjoint, their union the plan; each bin
    keeps the plan order."""
    if n < 1:
        raise ValueError(f"cannot cut a plan into {n} parts")
    weight: dict[tuple[str, str], float] = {}
    for r in rows:
        weight[group_of(r)] = weight.get(group_of(r), 0.0) + cost(r)
    loads = [0.0] * n
    where: dict[tuple[str, str], int] = {}
    for g in sorted(weight, key=lambda g: (-round(weight[g], 6), g)):
        b = min(range(n), key=lambda i: (round(loads[i], 6), i))
        where[g] = b
        loads[b] += weight[g]
    bins: list[list[RowPlan]] = [[] for _ in range(n)]
    for r in rows:
        bins[where[group_of(r)]].append(r)
    return bins


def fit_budget(rows: Sequence[RowPlan], cost: Callable[[RowPlan], float],
               max_s: float) -> tuple[list[RowPlan], int, int, float]:
    """(rows, shapes taken, shapes planned, expected seconds): the plan cut to whole shapes (every provider of one
    kernel x model x shape x dtype, so each taken Helion row has its upstreams beside it) whose expected cost fits
    `max_s`, taken round robin over the kernels in plan order: a time-limited sweep covers every kernel a little
    before any kernel fully.  A kernel whose next shape no longer fits drops out; the others go on.  The rows keep
    the plan order."""
    shapes: dict[tuple[str, ...], list[RowPlan]] = {}
    for r in rows:
        shapes.setdefault((r.kernel, r.model, r.regime, json.dumps(r.params, sort_keys=True), r.dtype), []).append(r)
    queues: dict[str, list[tuple[str, ...]]] = {}
    for key in shapes:
        queues.setdefault(key[0], []).append(key)
    taken: set[tuple[str, ...]] = set()
    total = 0.0
    while queues:
        for kernel in list(queues):
            key = queues[kernel][0]
            c = sum(cost(r) for r in shapes[key])
            if total + c > max_s:
                del queues[kernel]
                continue
            total += c
            taken.add(key)
            queues[kernel].pop(0)
            if not queues[kernel]:
                del queues[kernel]
    kept = [r for key, rs in shapes.items() if key in taken for r in rs]
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(kept, key=lambda r: order[id(r)]), len(taken), len(shapes), total


def plan_digest(rows: Sequence[RowPlan], cost: Callable[[RowPlan], float]) -> str:
    """Identifies a plan and the costs it was cut with: shards of one plan share it (merge checks)."""
    data = [[*row_key(r.base_row()), round(cost(r), 6)] for r in rows]
    return hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()[:16]


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-600:]


@dataclasses.dataclass
class _Worker:
    """A started worker process. One started ahead (`wait_go`) has done its imports and waits for `go` on stdin
    before its first row."""
    proc: subprocess.Popen
    errf: TextIO
    log_path: Path
    wait_go: bool
    launched: float

    def go(self) -> None:
        assert self.proc.stdin
        self.launched = time.perf_counter()  # its rows' cost runs from here: the imports overlapped other work
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):  # it died while waiting: _drain records the cause
            pass

    def abandon(self) -> None:
        _kill(self.proc)
        self.errf.close()


class Runner:
    def __init__(self, writer: RunWriter, opts: RunOptions, log: TextIO | None = None,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.writer = writer
        self.opts = opts
        # sys.stderr of now, not of import time: a stream bound at import (e.g. pytest's capsys) may be closed later
        self.log = sys.stderr if log is None else log
        self.on_row = on_row
        self.versions: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        #: wall seconds each finished row took on the runner's clock (since the previous row of its worker, or
        #: the worker's start: imports and compiles count), by kernel
        self.row_seconds: dict[str, list[float]] = {}
        self.done = 0
        self.total = 0
        self.t_start = time.perf_counter()
        self._lock = threading.Lock()
        #: while parallel check jobs share a GPU: (index, row) of rows whose result was a CUDA OOM, withheld
        #: so they run again alone (a row that needs most of the GPU is not a failing port); None otherwise
        self._oom_retry: list[tuple[int, RowPlan]] | None = None
        self._retrying_alone = False

    def _gpu(self, env: Mapping[str, str]) -> str | None:
        """The device index a worker with `env` runs on, for the row's `gpu` column (None on the CPU)."""
        if "CUDA_VISIBLE_DEVICES" in env:
            return env["CUDA_VISIBLE_DEVICES"]
        if self.opts.device != "cuda":
            return None
        return (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]

    def _groups(self, items: list[tuple[int, RowPlan]]) -> list[tuple[tuple[str, str], list[tuple[int, RowPlan]]]]:
        groups: dict[tuple[str, str], list[tuple[int, RowPlan]]] = {}
        for i, r in items:
            groups.setdefault((r.impl, "" if self.opts.share_process else r.kernel), []).append((i, r))
        return list(groups.items())

    def run(self, rows: list[RowPlan]) -> dict[str, int]:
        self.total = len(rows)
        items = list(enumerate(rows))
        jobs = max(1, self.opts.jobs)
        if jobs > 1 and not self.opts.check_only:
            raise ValueError("jobs > 1 is for correctness-only runs: concurrent kernels disturb each other's timings")

        def slot_env(s: int) -> dict[str, str]:
            return {"CUDA_VISIBLE_DEVICES": self.opts.gpus[s % len(self.opts.gpus)]} if self.opts.gpus else {}

        if not self.opts.check_only and len(self.opts.gpus) > 1:
            # one timing worker per GPU; a GPU's groups run one after another (its timings never overlap)
            bins = partition(rows, len(self.opts.gpus), row_cost(self.opts.expected_row_cost_s))
            bin_of = {group_of(r): b for b, part in enumerate(bins) for r in part}
            per_gpu = [[(i, r) for i, r in items if bin_of[group_of(r)] == b] for b in range(len(bins))]
            self._threads([(lambda s=s, part=part: self._run_groups(self._groups(part), slot_env(s)))
                           for s, part in enumerate(per_gpu) if part])
            return self.counts
        groups = self._groups(items)
        if jobs == 1:  # one group after another in this thread (timed runs must never overlap)
            self._run_groups(groups, slot_env(0))
            return self.counts
        # a fixed pool of job slots; slot s always uses the same GPU, groups are taken in plan order
        take = threading.Lock()

        def slot(s: int) -> None:
            env = slot_env(s)
            while True:
                with take:
                    if not groups:
                        return
                    (impl, kernel), group = groups.pop(0)
                self._run_group(impl, kernel, group, env)

        self._oom_retry = []  # rows that ran out of GPU memory beside other jobs: re-run alone below
        self._threads([(lambda s=s: slot(s)) for s in range(min(jobs, len(groups)))])
        retry, self._oom_retry = sorted(self._oom_retry, key=lambda ir: ir[0]), None
        if retry:
            print(f"{len(retry)} rows ran out of GPU memory beside the other jobs: running them again one at a "
                  "time, alone on the GPU", file=self.log, flush=True)
            self._retrying_alone = True
            self._run_groups(self._groups(retry), slot_env(0))
        return self.counts

    def _run_groups(self, groups: list[tuple[tuple[str, str], list[tuple[int, RowPlan]]]],
                    env: dict[str, str]) -> None:
        """One group after another; the next group's worker is started while this one runs, so its imports
        (torch, Helion, an upstream's package tree: seconds each) overlap this group's GPU work. It waits for
        `go` before it touches the GPU."""
        nxt = None
        for k, ((impl, kernel), group) in enumerate(groups):
            spawned = nxt if nxt is not None else self._spawn(impl, kernel, dict(group), env, wait_go=False)
            nxt = None
            if spawned.wait_go:
                spawned.go()
            if k + 1 < len(groups):
                (impl2, kernel2), group2 = groups[k + 1]
                nxt = self._spawn(impl2, kernel2, dict(group2), env, wait_go=True)
            self._run_group(impl, kernel, group, env, spawned)
        if nxt is not None:  # only when a group raised: never leave a waiting worker behind
            nxt.abandon()

    @staticmethod
    def _threads(targets: list[Callable[[], None]]) -> None:
        threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def row_cost_s(self) -> dict[str, float]:
        """Mean wall seconds per row by kernel (metadata `row_cost_s`: the next sweep's expected costs)."""
        return {k: round(sum(v) / len(v), 3) for k, v in sorted(self.row_seconds.items()) if v}

    def report_row_costs(self) -> dict[str, float]:
        """Log the row cost per kernel, costliest first, and return it."""
        costs = self.row_cost_s()
        if costs:
            parts = [f"{k} {c:.2f} s x {len(self.row_seconds[k])}"
                     for k, c in sorted(costs.items(), key=lambda kv: -kv[1] * len(self.row_seconds[kv[0]]))]
            print("row cost per kernel (wall s/row, runner clock): " + ", ".join(parts), file=self.log, flush=True)
        return costs

    def _withhold_oom(self, i: int, plan: RowPlan, result: Mapping[str, Any]) -> bool:
        """True (and the row kept for the alone re-run) when parallel jobs share the GPU and this row's error is
        a CUDA out-of-memory (the worker marks it `OOM: `)."""
        if self._oom_retry is None or result.get("status") != "error" or \
                not str(result.get("error") or "").startswith("OOM: "):
            return False
        with self._lock:
            self._oom_retry.append((i, plan))
        return True

    def _record(self, plan: RowPlan, result: dict[str, Any], samples: list[float], gpu: str | None = None,
                seconds: float | None = None) -> None:
        with self._lock:
            if seconds is not None:
                self.row_seconds.setdefault(plan.kernel, []).append(seconds)
            self._record_locked(plan, {**result, "gpu": gpu}, samples)

    def _record_locked(self, plan: RowPlan, result: dict[str, Any], samples: list[float]) -> None:
        row = {**plan.base_row(), **result}
        if self._retrying_alone:
            row["notes"] = "; ".join(n for n in (row.get("notes"), "run alone after a CUDA OOM beside other jobs") if n)
        self.writer.add(row, samples)
        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        self.done += 1
        elapsed = time.perf_counter() - self.t_start
        eta = elapsed / self.done * (self.total - self.done)
        what = f"{row['median_us']:.1f} us" if row.get("median_us") is not None else (row.get("error") or "")[:90]
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        where = f"gpu {row['gpu']} " if len(self.opts.gpus) > 1 and row.get("gpu") is not None else ""
        print(f"[{bar}] {self.done}/{self.total} eta {eta:4.0f}s  {where}{plan.kernel} {plan.impl:<8} {plan.model} "
              f"{plan.dtype} {json.dumps(plan.params, separators=(',', ':'))} -> {row['status']} {what}",
              file=self.log, flush=True)
        if self.on_row:
            self.on_row(row)

    def _log_path(self, impl: str, kernel: str, env: Mapping[str, str]) -> Path:
        log_dir = self.writer.run_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        stem = f"{kernel}__{impl}" if kernel else impl
        # a kernel split over several GPUs has a worker on each: one log per GPU
        return log_dir / (f"{stem}__gpu{self._gpu(env)}.log" if len(self.opts.gpus) > 1 and not self.opts.check_only
                          else f"{stem}.log")

    def _spawn(self, impl: str, kernel: str, pending: dict[int, RowPlan], env: Mapping[str, str],
               wait_go: bool) -> _Worker:
        task = {
            "impl": impl, "device": self.opts.device, "seed": self.opts.seed,
            "target_s": self.opts.target_s, "use_graph": self.opts.use_graph,
            "recheck_seed": self.opts.recheck_seed, "env": self.opts.env,
            "check_only": self.opts.check_only, "wait_go": wait_go,
            "rows": [{"i": i, "kernel": p.kernel, "model": p.model, "regime": p.regime, "params": p.params,
                      "dtype": p.dtype} for i, p in pending.items()],
        }
        log_path = self._log_path(impl, kernel, env)
        errf = log_path.open("a")
        errf.write(f"--- worker start {time.strftime('%H:%M:%S')} ({len(pending)} rows"
                   f"{', started ahead: waits for go' if wait_go else ''})\n")
        errf.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.worker"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=errf, text=True, start_new_session=True,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1",
                 "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)},
        )
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(task) + "\n")
        proc.stdin.flush()
        if not wait_go:
            proc.stdin.close()
        return _Worker(proc, errf, log_path, wait_go, time.perf_counter())

    def _run_group(self, impl: str, kernel: str, items: list[tuple[int, RowPlan]],
                   env: dict[str, str] | None = None, spawned: _Worker | None = None) -> None:
        """Rows of one group until none is pending: a worker that dies or hangs costs its row in flight and a
        new worker takes the rest. `spawned`: a worker already started for exactly these rows (and told go)."""
        pending = dict(items)
        env = env or {}
        gpu = self._gpu(env)
        while pending:
            w = spawned if spawned is not None else self._spawn(impl, kernel, pending, env, wait_go=False)
            spawned = None
            with w.errf:
                self._drain(w.proc, pending, w.log_path, w.errf, gpu, w.launched)

    def _drain(self, proc: subprocess.Popen, pending: dict[int, RowPlan], log_path: Path, errf: TextIO,
               gpu: str | None = None, launched: float | None = None) -> None:
        last = time.perf_counter() if launched is None else launched  # a row's cost runs from here

        def record(plan: RowPlan, result: dict[str, Any], samples: list[float], i: int | None = None) -> None:
            nonlocal last
            now = time.perf_counter()
            if i is not None and self._withhold_oom(i, plan, result):
                last = now
                return
            self._record(plan, result, samples, gpu, now - last)
            last = now

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        current: int | None = None
        started_any = False
        limit_of_current = self.opts.first_timeout_s
        deadline = time.monotonic() + self.opts.first_timeout_s
        buf = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(proc)
                victim = current if current is not None else next(iter(pending))
                limit = limit_of_current if current is not None else self.opts.first_timeout_s
                record(pending.pop(victim), {"status": "timeout",
                                                   "error": f"timeout: no result within {limit:.0f} s"}, [])
                return
            if not sel.select(timeout=min(remaining, 1.0)):
                continue
            chunk = proc.stdout.readline()
            if chunk == "":
                rc = proc.wait()
                if pending:
                    victim = current if current is not None else next(iter(pending))
                    cause = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
                    record(pending.pop(victim), {
                        "status": "error", "error": f"worker died ({cause}): {_tail(log_path)}"}, [])
                return
            buf = chunk
            if not buf.startswith(MARK):
                errf.write(buf)  # an upstream printed to stdout: keep it in the log
                errf.flush()
                continue
            msg = json.loads(buf[len(MARK):])
            ev = msg["event"]
            if ev == "start":
                current = msg["i"]
                first = msg.get("first") or not started_any
                deadline = time.monotonic() + (self.opts.first_timeout_s if first else self.opts.timeout_s)
                limit_of_current = self.opts.first_timeout_s if first else self.opts.timeout_s
                started_any = True
            elif ev == "row":
                plan = pending.pop(msg["i"])
                record(plan, msg["row"], msg.get("samples") or [], msg["i"])
                current = None
            elif ev == "versions":
                with self._lock:
                    self.versions.update(msg["versions"])
            elif ev == "done":
                proc.wait()
                return
