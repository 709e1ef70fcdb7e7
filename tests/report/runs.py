"""Fixture runs for the report/compare tests, written with the real `RunWriter` (never hand-written CSV)."""

from __future__ import annotations

import copy
import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.results import RESULTS_CSV, RESULTS_GZ, RunWriter

METADATA: dict[str, Any] = {
    "gpu": "NVIDIA H100 80GB HBM3",
    "gpu_slug": "h100",
    "driver": "580.65.06",
    "cuda": "13.0",
    "torch": "2.11.0+cu130",
    "triton": "3.6.0",
    "helion": "1.5.0",
    "python": "3.12.3",
    "upstreams": {"vllm": "0.33.0", "sglang": "0.5.23"},
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "git_dirty": False,
    "date": "2026-11-26T03:00:00Z",
    "seed": 0,
    "command": "python -m harness bench --category all",
    "ceilings": {"copy_gbps": 3000.0, "bf16_tflops": 790.0},
}

#: the standard fixture: (category, kernel, impl, model, shape, base mean us); ~2 dozen rows
KERNELS: dict[str, tuple[str, tuple[str, ...], tuple[dict[str, int], ...]]] = {
    "fused_moe": ("moe", ("helion", "vllm", "sglang"),
                  tuple({"E": 8, "K": 4096, "M": m, "N": 14336, "topk": 2} for m in (1, 16, 256, 2048))),
    "rms_norm": ("norm", ("helion", "vllm", "torch"), tuple({"M": m, "N": 4096} for m in (1, 128, 4096))),
}


def base_mean(kernel: str, impl: str, shape: dict[str, int]) -> float:
    """A plausible latency that grows with tokens and differs per impl."""
    per_impl = {"helion": 1.0, "vllm": 1.25, "sglang": 1.1, "torch": 2.0}[impl]
    per_kernel = {"fused_moe": 40.0, "rms_norm": 4.0}[kernel]
    return per_kernel * per_impl * (1.0 + shape["M"] / 256)


def standard_rows() -> list[dict[str, Any]]:
    out = []
    for kernel, (category, impls, shapes) in KERNELS.items():
        for impl in impls:
            for shape in shapes:
                out.append({"kernel": kernel, "category": category, "impl": impl, "model": "llama-3.1-8b",
                            "regime": "decode" if shape["M"] <= 16 else "prefill", "shape": dict(shape),
                            "dtype": "bf16", "mean_us": base_mean(kernel, impl, shape)})
    return out


def write_run(run_dir: Path, specs: Sequence[dict[str, Any]], seed: int, metadata: dict[str, Any] | None = None,
              n_samples: int = 60, spread: float = 0.02, with_samples: bool = True, finish: bool = True) -> Path:
    """Write one run: `ok` rows get normal samples (mean `mean_us`, sd `spread` x mean) from `seed`.

    A spec with `status` other than ok becomes a failure row with its `error` and no timings; a spec may set
    `timing_method`. With `finish` (the default) the run gets its completion mark, as a finished sweep does.
    """
    rng = np.random.default_rng(seed)
    writer = RunWriter(run_dir, metadata if metadata is not None else copy.deepcopy(METADATA),
                       planned_rows=len(specs))
    for spec in specs:
        row = {k: spec[k] for k in ("kernel", "category", "impl", "model", "regime", "dtype")}
        row["shape"] = spec["shape"]
        status = spec.get("status", "ok")
        row["status"] = status
        if status != "ok":
            row["error"] = spec.get("error", f"{status}: planted by the test")
            writer.add(row)
            continue
        samples = rng.normal(spec["mean_us"], spread * spec["mean_us"], n_samples)
        med = float(np.median(samples))
        row.update(median_us=med, p20_us=float(np.percentile(samples, 20)), p80_us=float(np.percentile(samples, 80)),
                   n_samples=n_samples, timing_method=spec.get("timing_method", "cuda_graph"),
                   eager_us=med * 1.3 + 5.0,
                   gbps=spec.get("bytes", 4.0e6) / med / 1e3, tflops=spec.get("flops", 2.0e9) / med / 1e6,
                   rel_err=1e-3, tol=2e-2, max_abs_err=1e-2, config="{}", config_source="default")
        writer.add(row, samples.tolist() if with_samples else None)
    if finish:
        writer.finish()
    return run_dir


def plain_results(run_dir: Path) -> Path:
    """The run's results table as a plain results.csv (a finished run's results.csv.gz unpacked, as a hand edit
    would leave it), for the tests that tamper with it."""
    gz, plain = Path(run_dir) / RESULTS_GZ, Path(run_dir) / RESULTS_CSV
    if gz.exists():
        plain.write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    return plain
