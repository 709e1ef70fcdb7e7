"""Worker process: runs the rows of one provider (one kernel, or several when the runner shares processes)
and streams each result to the parent.

Started by harness.runner as `python -m harness.worker`; reads a JSON task on stdin; writes protocol lines
prefixed with MARK on stdout (anything else an upstream prints is passed through to the log).  The parent
owns isolation: a row that crashes the process or hangs costs only that row.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import traceback
from typing import Any

MARK = "@@HB "


def emit(event: str, **payload: Any) -> None:
    sys.stdout.write(MARK + json.dumps({"event": event, **payload}, default=str) + "\n")
    sys.stdout.flush()


def case_seed(base_seed: int, kernel: str, model: str, shape: str, dtype: str) -> int:
    """Same inputs for every impl of one case (a fair comparison), fresh inputs for every case."""
    h = hashlib.sha256(f"{base_seed}|{kernel}|{model}|{shape}|{dtype}".encode()).hexdigest()
    return int(h[:8], 16)


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:300] if msg else ''}".rstrip(": ")


def rewrite_inputs(spec, inputs, case, dtype: str, device, seed: int) -> list[str]:
    """Overwrite the spec's data inputs in place (same storage, fresh values from `seed`): what `prepare` saw is
    gone, so an impl whose callable does not read its inputs (the answer computed in `prepare`, a cached
    output) is caught by the next check.  All or nothing: when a fresh draw has another shape (ragged lengths
    drawn per seed), a partial rewrite could make the inputs inconsistent (new tokens vs their cache), so none
    is rewritten and the names are returned."""
    fresh = spec.make_inputs(case, dtype, device, seed)
    names = spec.data_inputs(inputs)
    for name in names:
        new, old = fresh.get(name), inputs[name]
        if not isinstance(new, type(old)) or new.shape != old.shape or new.dtype != old.dtype:
            return names
    for name in names:
        inputs[name].copy_(fresh[name])
    return []


def run_row(spec, impl, case, dtype: str, task: dict[str, Any], device) -> tuple[dict[str, Any], list[float]]:
    import torch

    from harness import correctness, timing

    row: dict[str, Any] = {}
    reason = spec.invalid_reason(case, dtype) or impl.dtype_reason(dtype) or impl.case_reason(case, dtype)
    if reason:
        return {"status": "unavailable", "error": f"unavailable: {reason}"}, []
    seed = case_seed(task["seed"], spec.id, case.model, case.shape_json(), dtype)
    phases = _Phases(spec.id, case)
    inputs = spec.make_inputs(case, dtype, device, seed)
    out = spec.make_output(inputs, case, dtype)
    ref = spec.reference(inputs, case, dtype)
    tol = spec.tolerance(dtype)
    row["tol"] = (tol if isinstance(tol, correctness.Tolerance) else max(tol.values(), key=lambda t: t.rel)).rel

    def failed(what: str, check) -> tuple[dict[str, Any], list[float]]:
        for k in ("eager_us", "compile_s"):  # an incorrect row gets no time of any kind
            row.pop(k, None)
        row.update(status="incorrect", error=f"{what}: {check.reason}" if what else check.reason,
                   rel_err=check.rel_err, max_abs_err=check.max_abs_err)
        return row, []

    t0 = time.perf_counter()
    prepared = impl.prepare(inputs, out, case, dtype)
    info = prepared.info
    row["config"] = info.get("config")
    row["config_source"] = info.get("config_source")
    row["notes"] = info.get("notes")
    check = correctness.check_call(prepared.fn, out, ref, tol)  # first call: JIT compile / autotune
    first_s = time.perf_counter() - t0
    phases.mark("inputs+reference+prepare+first call")
    row.update(max_abs_err=check.max_abs_err, rel_err=check.rel_err)
    if not check.ok:
        return failed("", check)
    # no work in prepare: the same callable on new values in the same input storage
    skipped = rewrite_inputs(spec, inputs, case, dtype, device, seed ^ 0x5EED)
    if prepared.relayout is not None:
        prepared.relayout()
    ref = spec.reference(inputs, case, dtype)
    check = correctness.check_call(prepared.fn, out, ref, tol)
    if not check.ok:
        return failed("inputs rewritten after prepare", check)
    if skipped:
        row["notes"] = "; ".join(x for x in (row.get("notes"), "inputs not rewritten after prepare (a fresh draw "
                                             f"has other shapes): {', '.join(skipped)}") if x)
    if task.get("check_only"):  # correctness sweep: the gate on two seeds, no timing
        for what, fn, o, r in _rechecks(spec, impl, case, dtype, task, device, seed, prepared, out, inputs):
            check = correctness.check_call(fn, o, r, tol)
            if not check.ok:
                return failed(what, check)
        row["status"] = "ok"
        return row, []
    phases.mark("rewrite check")
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    prepared.fn()
    sync()
    steady_s = time.perf_counter() - t0
    row["compile_s"] = max(0.0, first_s - steady_s)

    if device.type == "cuda":
        dt = timing.time_device([prepared.fn], device, target_s=task["target_s"], use_graph=task["use_graph"])
        phases.mark(f"device timing ({len(dt.samples_us)} reps)")
        row["eager_us"] = timing.time_eager(prepared.fn, device)
        phases.mark("eager timing")
    else:  # CPU runs exist for the harness's own tests (interpret mode); wall clock only
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            prepared.fn()
            samples.append((time.perf_counter() - t0) * 1e6)
        dt = timing.DeviceTiming(samples_us=samples, method="cpu_wall")
        row["eager_us"] = dt.median_us
    if dt.graph_error:
        row["notes"] = "; ".join(x for x in (row.get("notes"), f"graph capture failed: {dt.graph_error}") if x)

    # the timed callable must still be right afterwards (on new values again: a cached output fails), and on
    # fresh inputs with a new seed
    for what, fn, o, r in _rechecks(spec, impl, case, dtype, task, device, seed, prepared, out, inputs):
        check = correctness.check_call(fn, o, r, tol)
        if not check.ok:
            return failed(what, check)
    phases.mark("rechecks")
    phases.log()
    med = dt.median_us
    row.update(status="ok", median_us=med, p20_us=dt.p20_us, p80_us=dt.p80_us, n_samples=len(dt.samples_us),
               timing_method=dt.method)
    fl, by = spec.flops(case), spec.bytes(case, dtype)
    row["tflops"] = fl / (med * 1e-6) / 1e12 if fl else None
    row["gbps"] = by / (med * 1e-6) / 1e9 if by else None
    return row, dt.samples_us


class _Phases:
    """Wall seconds of a row's phases, written to the worker log (stderr): where a sweep's time goes."""

    def __init__(self, kernel: str, case) -> None:
        self.what = f"{kernel} {case.model} {case.shape_json()}"
        self.last = time.perf_counter()
        self.parts: list[str] = []

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.parts.append(f"{name} {now - self.last:.2f}")
        self.last = now

    def log(self) -> None:
        print(f"row phases (s): {self.what}: " + ", ".join(self.parts), file=sys.stderr, flush=True)


def _rechecks(spec, impl, case, dtype, task, device, seed, prepared, out, inputs):
    """(what, callable, outputs, reference) of the checks after the first: the prepared callable once more on
    rewritten inputs, then (unless disabled) a fresh prepare on a second seed."""
    rewrite_inputs(spec, inputs, case, dtype, device, seed ^ 0xC0FFEE)
    if prepared.relayout is not None:
        prepared.relayout()
    yield "again after timing, on rewritten inputs", prepared.fn, out, spec.reference(inputs, case, dtype)
    if task.get("recheck_seed", True):
        seed2 = (seed + 0x9E3779B1) % (1 << 31)
        inputs2 = spec.make_inputs(case, dtype, device, seed2)
        out2 = spec.make_output(inputs2, case, dtype)
        ref2 = spec.reference(inputs2, case, dtype)
        prepared2 = impl.prepare(inputs2, out2, case, dtype)
        yield "fresh inputs (second seed)", prepared2.fn, out2, ref2


def _load_impl(registry, kernel: str, provider: str):
    """(impl, None) when runnable, else (impl or None, reason)."""
    try:
        impl = registry.get_impl(kernel, provider)
        reason = impl.available()
    except Exception as e:  # noqa: BLE001 - an impl that cannot even be imported is unavailable, with why
        traceback.print_exc()
        return None, f"import failed: {_short(e)}"
    if reason is None:
        try:
            emit("versions", versions=impl.versions())
        except Exception:  # noqa: BLE001 - versions are metadata; never cost the row
            traceback.print_exc()
    return impl, reason


def main() -> int:
    """Runs the task's rows (one provider, any kernels) in order; imports are paid once per process."""
    task = json.loads(sys.stdin.readline())
    os.environ.update(task.get("env", {}))
    import torch

    from harness import registry
    from harness.spec import Case

    device = torch.device(task["device"])
    impls: dict[str, tuple[Any, str | None]] = {}
    if task.get("wait_go"):  # started ahead of its turn: pay the imports now, touch the GPU only after `go`
        for kernel in dict.fromkeys(item["kernel"] for item in task["rows"]):
            impls[kernel] = _load_impl(registry, kernel, task["impl"])
        if sys.stdin.readline().strip() != "go":  # the runner went away or gave up on this worker
            return 0
    compiled: set[tuple[str, str]] = set()
    for item in task["rows"]:
        i, kernel = item["i"], item["kernel"]
        # the first row of a kernel and dtype also pays its JIT compile / autotune: it gets the longer limit
        first = (kernel, item["dtype"]) not in compiled
        compiled.add((kernel, item["dtype"]))
        emit("start", i=i, first=first)
        if kernel not in impls:
            impls[kernel] = _load_impl(registry, kernel, task["impl"])
        impl, reason = impls[kernel]
        case = Case(model=item["model"], regime=item["regime"], params=item["params"])
        if reason is not None:
            emit("row", i=i, row={"status": "unavailable", "error": f"unavailable: {reason}"}, samples=[])
            continue
        try:
            row, samples = run_row(registry.specs()[kernel], impl, case, item["dtype"], task, device)
        except Exception as e:  # noqa: BLE001 - one row's failure must not stop the others
            traceback.print_exc()
            oom = "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError"
            row, samples = {"status": "error", "error": ("OOM: " if oom else "") + _short(e)}, []
        for k, v in list(row.items()):
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                row[k] = None
        emit("row", i=i, row=row, samples=samples)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
