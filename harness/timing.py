"""The one timer.

Device time: the callable is captured in a CUDA graph (fallback: launched directly), and each repetition is
`flush L2 -> event -> replay -> event`, so small shapes cannot be flattered by a warm cache and launch gaps
inside a multi-kernel call do not count.  Repetitions are adaptive: taken in batches until the median's bootstrap
95 % interval is within +/-1 % of it (`should_stop`), at least `min_reps`, at most `max_reps` and the `target_s`
budget.  Eager time: wall clock of back-to-back direct calls, i.e. what a
caller without CUDA graphs pays, host launch overhead included.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

L2_FLUSH_BYTES = 256 * 1024 * 1024  # 5x the H100's 50 MB L2

#: adaptive repetitions stop once the median's bootstrap interval is within +/- REL_CI of the median
REL_CI = 0.01
CI_LEVEL = 0.95
N_BOOT = 400  # bootstrap resamples: the interval's ends move by well under 0.1 % between seeds at this count


@dataclasses.dataclass(frozen=True)
class DeviceTiming:
    samples_us: list[float]
    method: str  # cuda_graph | events
    graph_error: str | None = None

    def quantile(self, q: float) -> float:
        s = sorted(self.samples_us)
        if len(s) == 1:
            return s[0]
        pos = q * (len(s) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples_us)

    @property
    def p20_us(self) -> float:
        return self.quantile(0.2)

    @property
    def p80_us(self) -> float:
        return self.quantile(0.8)


class _Flusher:
    def __init__(self, device: torch.device) -> None:
        self.buf = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device=device)

    def __call__(self) -> None:
        self.buf.zero_()


def _capture(fns: Sequence[Callable[[], object]], device: torch.device) -> list[torch.cuda.CUDAGraph]:
    graphs = []
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for fn in fns:  # warm-up on the capture stream (allocator, lazy init)
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    torch.cuda.synchronize(device)
    for fn in fns:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=stream):
            fn()
        graphs.append(g)
    torch.cuda.synchronize(device)
    return graphs


def median_ci(samples: Sequence[float], *, level: float = CI_LEVEL, n_boot: int = N_BOOT,
              seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median (seeded: the same samples always give the same interval)."""
    x = np.asarray(samples, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    meds = np.median(x[idx], axis=1)
    tail = (1.0 - level) / 2
    return float(np.quantile(meds, tail)), float(np.quantile(meds, 1.0 - tail))


def should_stop(samples: Sequence[float], *, min_reps: int, max_reps: int, rel_ci: float | None = REL_CI) -> bool:
    """The stopping rule of the adaptive repetitions, pure: stop at `max_reps`; never before `min_reps`; in
    between, once the median's bootstrap CI_LEVEL interval lies within +/- rel_ci of the median (None: never
    early, i.e. a fixed count)."""
    n = len(samples)
    if n >= max_reps:
        return True
    if n < min_reps or rel_ci is None:
        return False
    med = statistics.median(samples)
    if med <= 0:
        return False
    lo, hi = median_ci(samples)
    return hi - med <= rel_ci * med and med - lo <= rel_ci * med


def collect_adaptive(run_batch: Callable[[int], list[float]], *, min_reps: int, max_reps: int,
                     rel_ci: float | None = REL_CI) -> list[float]:
    """Samples from `run_batch(k)` (k more repetitions' times) until `should_stop`: a first batch of `min_reps`,
    then batches of a tenth of the cap (at least 10), so the rule is checked a handful of times."""
    samples: list[float] = []
    step = max(10, max_reps // 10)
    while not should_stop(samples, min_reps=min_reps, max_reps=max_reps, rel_ci=rel_ci):
        want = min_reps - len(samples) if len(samples) < min_reps else step
        samples += run_batch(max(1, min(want, max_reps - len(samples))))
    return samples


def time_device(
    fns: Sequence[Callable[[], object]],
    device: torch.device,
    *,
    target_s: float = 0.3,
    min_reps: int = 20,  # the floor: a stable kernel stops here; enough samples for compare's bootstrap
    max_reps: int = 500,
    use_graph: bool = True,
    rel_ci: float | None = REL_CI,
) -> DeviceTiming:
    """Per-repetition device times (µs) of calling fns[i % len(fns)], each preceded by an L2 flush. Repetitions
    are adaptive (`collect_adaptive`): at least `min_reps`, at most `max_reps` and what fits `target_s`, fewer
    once the median is pinned to +/- `rel_ci` (None: always the full count, the old behaviour)."""
    flush = _Flusher(device)
    calls: list[Callable[[], object]] = list(fns)
    method = "events"
    graph_error = None
    if use_graph:
        try:
            graphs = _capture(fns, device)
            calls = [g.replay for g in graphs]
            method = "cuda_graph"
        except Exception as e:  # noqa: BLE001 - any capture failure falls back to direct launches
            graph_error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            torch.cuda.synchronize(device)
    # estimate the cost of one repetition (flush included) to pick the count
    for c in calls:
        c()
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    probe = 3
    for i in range(probe):
        flush()
        calls[i % len(calls)]()
    torch.cuda.synchronize(device)
    per_rep = max((time.perf_counter() - t0) / probe, 1e-6)
    cap = int(min(max_reps, max(min_reps, target_s / per_rep)))
    done = 0

    def run_batch(k: int) -> list[float]:
        nonlocal done
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(k)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(k)]
        for j in range(k):
            flush()
            starts[j].record()
            calls[(done + j) % len(calls)]()
            ends[j].record()
        torch.cuda.synchronize(device)
        done += k
        return [s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends)]

    samples = collect_adaptive(run_batch, min_reps=min(min_reps, cap), max_reps=cap, rel_ci=rel_ci)
    return DeviceTiming(samples_us=samples, method=method, graph_error=graph_error)


def time_eager(fn: Callable[[], object], device: torch.device, *, target_s: float = 0.1, batches: int = 3) -> float:
    """Median over `batches` of the mean wall time (µs) of back-to-back direct calls, no flush."""
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize(device)
    one = max(time.perf_counter() - t0, 1e-6)
    n = int(min(1000, max(5, target_s / batches / one)))
    per_call = []
    for _ in range(batches):
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize(device)
        per_call.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(per_call)


# ------------------------------------------------------------------------------------------------- ceilings
#
# What the report's roofline columns divide by. Each ceiling is the best of a small sweep (a single launch
# configuration or size under-reads the card: on the H200 a torch `sum` over 1 GiB read 4069 GB/s where a tuned
# streaming kernel reads ~4.5 TB/s, so rows showed > 100 %), on buffers far larger than L2, timed with the same
# `time_device` as the kernels. A ceiling that fails to measure is None with its reason in the method record.

READ_BYTES = 4 << 30  # streaming read buffer: ~80x the H200's 50 MB L2 (at least 2 GiB is used)
MIN_READ_BYTES = 2 << 30
COPY_SIZES = (1 << 30, 2 << 30)  # bytes per buffer (copy moves 2x: read + write), each >> L2
MATMUL_SIZE = 8192
_READ_BLOCK = 4096
_READ_KERNEL: Any = None


def _read_kernel() -> Any:
    """A persistent grid-stride sum: each program streams BLOCK-wide fp32 tiles and writes one partial sum."""
    global _READ_KERNEL
    if _READ_KERNEL is None:
        import triton
        import triton.language as tl

        @triton.jit
        def stream_sum(x_ptr, out_ptr, n, BLOCK: tl.constexpr):  # noqa: N803 - Triton constexpr spelling
            pid = tl.program_id(0)
            step = tl.num_programs(0) * BLOCK
            acc = tl.zeros([BLOCK], dtype=tl.float32)
            for start in range(pid * BLOCK, n, step):  # n is a multiple of BLOCK: no mask on the hot path
                acc += tl.load(x_ptr + start + tl.arange(0, BLOCK))
            tl.store(out_ptr + pid, tl.sum(acc, axis=0))

        _READ_KERNEL = stream_sum
    return _READ_KERNEL


def _best(results: list[tuple[float, str]]) -> tuple[float, str]:
    return max(results, key=lambda r: r[0])


def _read_gbps(device: torch.device) -> tuple[float, str]:
    """Streaming read: the Triton grid-stride sum over a >= 2 GiB fp32 buffer, best over grid (SMs x 2/4/8) x
    num_warps (4/8); what weight-streaming kernels such as MoE decode are bound by."""
    free, _total = torch.cuda.mem_get_info(device)
    nbytes = min(READ_BYTES, (free // 3) // (_READ_BLOCK * 4) * (_READ_BLOCK * 4))
    if nbytes < MIN_READ_BYTES:
        raise RuntimeError(f"only {free / 2**30:.1f} GiB free: a {MIN_READ_BYTES >> 30} GiB read buffer does not fit")
    n = nbytes // 4
    x = torch.ones(n, device=device, dtype=torch.float32)
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    kernel = _read_kernel()
    out = torch.empty(8 * sms, device=device, dtype=torch.float32)
    tried = []
    for warps in (4, 8):
        for mult in (2, 4, 8):
            grid = (mult * sms,)
            t = time_device([lambda g=grid, w=warps: kernel[g](x, out, n, BLOCK=_READ_BLOCK, num_warps=w)], device,
                            target_s=0.05, min_reps=10)
            tried.append((nbytes / (t.median_us * 1e-6) / 1e9, f"grid {mult}xSM, BLOCK {_READ_BLOCK}, {warps} warps"))
    gbps, best = _best(tried)
    return gbps, (f"Triton grid-stride fp32 sum over {nbytes >> 20} MiB, median of L2-flushed CUDA-graph replays, "
                  f"best of {len(tried)} configs (grid 2/4/8 x SMs, 4/8 warps): {best}")


_COPY_KERNEL: Any = None


def _copy_kernel() -> Any:
    """A persistent grid-stride copy (the read kernel's loop with a store)."""
    global _COPY_KERNEL
    if _COPY_KERNEL is None:
        import triton
        import triton.language as tl

        @triton.jit
        def stream_copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):  # noqa: N803 - Triton constexpr spelling
            pid = tl.program_id(0)
            for start in range(pid * BLOCK, n, tl.num_programs(0) * BLOCK):
                offs = start + tl.arange(0, BLOCK)
                tl.store(y_ptr + offs, tl.load(x_ptr + offs))

        _COPY_KERNEL = stream_copy
    return _COPY_KERNEL


def _copy_gbps(device: torch.device) -> tuple[float, str]:
    """Device-to-device copy, read + write bytes counted: best of the Triton grid-stride copy (grid 2/4/8 x SMs,
    4/8 warps) and torch copy_ launched directly, over a few buffer sizes. Not `copy_` inside a CUDA graph: there
    it becomes a memcpy node the driver may hand to a copy engine (seen on the H200: 2.7 TB/s against 4.25 TB/s
    for the same copy launched as a kernel)."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    kernel = _copy_kernel()
    tried = []
    for size in COPY_SIZES:
        n = size // 4
        x = torch.ones(n, device=device, dtype=torch.float32)
        y = torch.empty_like(x)
        t = time_device([lambda x=x, y=y: y.copy_(x)], device, target_s=0.05, min_reps=10, use_graph=False)
        tried.append((2 * size / (t.median_us * 1e-6) / 1e9, f"torch copy_ (direct launch), {size >> 20} MiB"))
        for warps in (4, 8):
            for mult in (2, 4, 8):
                t = time_device([lambda g=(mult * sms,), w=warps, x=x, y=y, n=n:
                                 kernel[g](x, y, n, BLOCK=_READ_BLOCK, num_warps=w)],
                                device, target_s=0.03, min_reps=10)
                tried.append((2 * size / (t.median_us * 1e-6) / 1e9,
                              f"Triton copy, {size >> 20} MiB, grid {mult}xSM, {warps} warps"))
        del x, y
    gbps, best = _best(tried)
    return gbps, (f"read + write bytes counted, best of {len(tried)}: torch copy_ launched directly and a Triton "
                  f"grid-stride copy (grid 2/4/8 x SMs, 4/8 warps), buffers {[s >> 20 for s in COPY_SIZES]} MiB "
                  f"each, medians of L2-flushed repetitions: {best}")


def _mm_rate(fn: Callable[[], object], flops: float, device: torch.device, tries: int = 3) -> float:
    # best of a few: the first launches run at a lower clock on an idle card
    return max(flops / (time_device([fn], device, target_s=0.1, min_reps=10).median_us * 1e-6) / 1e12
               for _ in range(tries))


def _bf16_tflops(device: torch.device) -> tuple[float, str]:
    s = MATMUL_SIZE
    x = torch.randn(s, s, device=device, dtype=torch.bfloat16)
    y = torch.randn(s, s, device=device, dtype=torch.bfloat16)
    rate = _mm_rate(lambda: x @ y, 2.0 * s**3, device)
    return rate, f"torch bf16 matmul {s}x{s}x{s} on randn data, best of 3 medians"


def _fp8_tflops(device: torch.device) -> tuple[float, str]:
    s = MATMUL_SIZE
    a = torch.randn(s, s, device=device).to(torch.float8_e4m3fn)
    b = torch.randn(s, s, device=device).to(torch.float8_e4m3fn).t()  # column-major, as _scaled_mm wants
    one = torch.ones((), device=device, dtype=torch.float32)
    row_a = torch.ones(s, 1, device=device, dtype=torch.float32)
    row_b = torch.ones(1, s, device=device, dtype=torch.float32)
    tried, errors = [], []
    for name, sa, sb in (("tensor-wise", one, one), ("row-wise", row_a, row_b)):
        try:
            fn = (lambda sa=sa, sb=sb: torch._scaled_mm(a, b, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16))
            fn()
            tried.append((_mm_rate(fn, 2.0 * s**3, device), name))
        except Exception as e:  # noqa: BLE001 - one scaling mode missing (older torch / arch) leaves the other
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}")
    if not tried:
        raise RuntimeError("; ".join(errors))
    rate, best = _best(tried)
    return rate, (f"torch._scaled_mm e4m3 x e4m3 -> bf16 {s}x{s}x{s} on randn data, best of 3 medians per scaling "
                  f"({', '.join(n for _r, n in tried)}): {best}" + (f"; failed: {'; '.join(errors)}" if errors else ""))


def _int8_tops(device: torch.device) -> tuple[float, str]:
    s = MATMUL_SIZE
    a = torch.randint(-64, 64, (s, s), device=device, dtype=torch.int8)
    b = torch.randint(-64, 64, (s, s), device=device, dtype=torch.int8).t()
    rate = _mm_rate(lambda: torch._int_mm(a, b), 2.0 * s**3, device)
    return rate, f"torch._int_mm int8 x int8 -> int32 {s}x{s}x{s} on random data, best of 3 medians"


#: ceiling key -> measuring function; order = measuring order (a matmul first warms the clocks up)
_CEILINGS: dict[str, Callable[[torch.device], tuple[float, str]]] = {
    "bf16_tflops": _bf16_tflops,
    "fp8_tflops": _fp8_tflops,
    "int8_tops": _int8_tops,
    "read_gbps": _read_gbps,
    "copy_gbps": _copy_gbps,
}


def measure_ceilings(device: torch.device) -> tuple[dict[str, float | None], dict[str, str]]:
    """(ceilings, how each was measured) on this card: streaming read and copy GB/s, bf16 / fp8 TFLOP/s and int8
    TOP/s matmul peaks. Never raises: a ceiling that fails is None and its method entry says why. ~5-10 s."""
    torch.manual_seed(0)
    values: dict[str, float | None] = {}
    method: dict[str, str] = {}
    try:
        _bf16_tflops(device)  # warm-up: an idle card starts at a low clock
    except Exception as e:  # noqa: BLE001 - the measurements below say what fails
        method["warmup"] = f"failed: {type(e).__name__}: {e}"
    for key, fn in _CEILINGS.items():
        try:
            value, how = fn(device)
            values[key], method[key] = round(value, 1), how
        except Exception as e:  # noqa: BLE001 - a ceiling that cannot be measured must not cost the run
            values[key] = None
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            method[key] = f"not measured: {type(e).__name__}: {msg}"
        finally:
            torch.cuda.empty_cache()
    return values, method
