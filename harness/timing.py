"""The one timer.

Device time: the callable is captured in a CUDA graph (fallback: launched directly), and each repetition is
`flush L2 -> event -> replay -> event`, so small shapes cannot be flattered by a warm cache and launch gaps
inside a multi-kernel call do not count.  Eager time: wall clock of back-to-back direct calls, i.e. what a
caller without CUDA graphs pays, host launch overhead included.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import torch

L2_FLUSH_BYTES = 256 * 1024 * 1024  # 5x the H100's 50 MB L2


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


def time_device(
    fns: Sequence[Callable[[], object]],
    device: torch.device,
    *,
    target_s: float = 0.3,
    min_reps: int = 10,
    max_reps: int = 500,
    use_graph: bool = True,
) -> DeviceTiming:
    """Per-repetition device times (µs) of calling fns[i % len(fns)], each preceded by an L2 flush."""
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
    reps = int(min(max_reps, max(min_reps, target_s / per_rep)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        flush()
        starts[i].record()
        calls[i % len(calls)]()
        ends[i].record()
    torch.cuda.synchronize(device)
    samples = [s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends)]
    del flush
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


def _copy_gbps(device: torch.device) -> float:
    n = 1 << 28  # 512 MiB of bf16 per buffer
    a = torch.randn(n, device=device, dtype=torch.bfloat16)
    b = torch.empty_like(a)
    t = time_device([lambda: b.copy_(a)], device, target_s=0.2, min_reps=10)
    return 2 * n * 2 / (t.median_us * 1e-6) / 1e9


def _read_gbps(device: torch.device) -> float:
    """Read-only bandwidth (a sum over 1 GiB): what weight-streaming kernels such as MoE decode are bound by;
    a copy's read+write rate sits below it on HBM3."""
    n = 1 << 29  # 1 GiB of bf16
    a = torch.randn(n, device=device, dtype=torch.bfloat16)
    t = time_device([lambda: a.sum(dtype=torch.float32)], device, target_s=0.2, min_reps=10)
    return n * 2 / (t.median_us * 1e-6) / 1e9


def _matmul_tflops(device: torch.device) -> float:
    s = 8192
    x = torch.randn(s, s, device=device, dtype=torch.bfloat16)
    y = torch.randn(s, s, device=device, dtype=torch.bfloat16)
    t = time_device([lambda: x @ y], device, target_s=0.3, min_reps=10)
    return 2 * s**3 / (t.median_us * 1e-6) / 1e12


def measure_ceilings(device: torch.device) -> dict[str, float]:
    """The ceilings of METHOD.md, measured on this card: device-to-device copy GB/s (read + write), read-only
    GB/s, and bf16 matmul TFLOP/s on random data."""
    torch.manual_seed(0)
    _matmul_tflops(device)  # warm-up: an idle card starts at a low clock
    out = {"copy_gbps": round(_copy_gbps(device), 1), "read_gbps": round(_read_gbps(device), 1),
           "bf16_tflops": round(_matmul_tflops(device), 1)}
    torch.cuda.empty_cache()
    return out
