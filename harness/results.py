"""The public results format: one append-only folder per run.

results/<gpu-slug>/<run-id>/
    results.csv     one row per kernel x impl x model x shape x dtype (COLUMNS below, in that order)
    samples.jsonl   per-repetition device times of every `ok` row: {"key": {...ROW_KEY...}, "samples_us": [...]}
    metadata.json   GPU, driver, versions (torch, triton, helion, each upstream), git commit, date, seed,
                    measured ceilings (copy GB/s, bf16 TFLOP/s), the command line
    log.txt         (optional) the runner's log

A failure is a row with a status and an `error`, never a 0.0 time: timing columns of non-`ok` rows are empty.
Readers (reports, compare) use `read_run`, never kernels.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"

STATUSES = ("ok", "incorrect", "error", "timeout", "unavailable")

#: identifies one measurement across runs (compare joins on it)
ROW_KEY = ("kernel", "impl", "model", "shape", "dtype")

COLUMNS = (
    "kernel",  # spec id, e.g. fused_moe
    "category",  # catalog category, e.g. moe
    "impl",  # provider: vllm | sglang | fla | flashinfer | mamba_ssm | sageattention | helion | torch
    "model",  # shapes/<model>.yaml stem
    "regime",  # decode | prefill | test
    "shape",  # JSON object of the named dims
    "dtype",  # e.g. bf16, fp8_w8a8_block128
    "status",  # ok | incorrect | error | timeout | unavailable
    "max_abs_err",  # max |out - ref| of the checked call
    "rel_err",  # ||out - ref|| / ||ref|| (Frobenius)
    "tol",  # the rel_err bound the row was held to
    "median_us",  # device time per call: CUDA-graph replay (or events), L2 flushed, median over samples
    "p20_us",
    "p80_us",
    "n_samples",
    "timing_method",  # cuda_graph | events
    "eager_us",  # wall time per call of back-to-back eager calls: includes host launch overhead
    "gbps",  # spec.bytes / median
    "tflops",  # spec.flops / median
    "compile_s",  # first call (JIT compile / autotune / config load) minus one steady call, seconds
    "config",  # JSON: the tile config the kernel ran with
    "config_source",  # where it came from (tuned file for this GPU, helion shipped config, default ...)
    "notes",
    "error",  # reason for non-ok statuses ("unavailable: ..." rows say why)
)

_FLOAT_COLS = {"max_abs_err", "rel_err", "tol", "median_us", "p20_us", "p80_us", "eager_us", "gbps", "tflops",
               "compile_s"}
_INT_COLS = {"n_samples"}


def gpu_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100'; anything else -> a lowercase slug of the name."""
    m = re.search(r"\b([ABHLG]\d{2,3}[A-Z]?|B200|GB200|MI\d{3}X?)\b", name.upper())
    if m:
        return m.group(1).lower()
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row.get(k, "")) for k in ROW_KEY)


#: names a spec may give its token-count dim (the x axis of latency-vs-tokens, what `--tokens` selects)
TOKEN_KEYS = ("M", "tokens", "T")


def token_count(params: Mapping[str, Any]) -> int | None:
    """The case's token count under the first of TOKEN_KEYS it has, or None (a spec without a token axis)."""
    key = next((k for k in TOKEN_KEYS if k in params), None)
    return None if key is None else int(params[key])


def new_run_dir(out_root: Path, run_id: str) -> Path:
    """Create and return `out_root/run_id`, or `run_id-2`, `-3`, ... when two runs start in the same second
    (e.g. one per GPU): a run never writes into another run's folder."""
    out_root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = out_root / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder for {run_id} in {out_root}")


class RunWriter:
    """Writes a run folder incrementally: each row is flushed as soon as it is known, so a crash loses nothing."""

    def __init__(self, run_dir: Path, metadata: dict[str, Any]) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = metadata
        self.write_metadata()
        self._csv_path = run_dir / "results.csv"
        with self._csv_path.open("w", newline="") as f:
            csv.writer(f).writerow(COLUMNS)
        self._samples_path = run_dir / "samples.jsonl"
        self._samples_path.write_text("")

    def write_metadata(self) -> None:
        (self.run_dir / "metadata.json").write_text(json.dumps(self.metadata, indent=2, sort_keys=True) + "\n")

    def add(self, row: dict[str, Any], samples_us: Iterable[float] | None = None) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        if row.get("status") not in STATUSES:
            raise ValueError(f"bad status {row.get('status')!r}; valid: {STATUSES}")
        with self._csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in COLUMNS])
        if samples_us:
            key = {k: _fmt(row.get(k, "")) for k in ROW_KEY}  # the same text as the CSV cells
            with self._samples_path.open("a") as f:
                f.write(json.dumps({"key": key, "samples_us": [round(s, 4) for s in samples_us]}) + "\n")


def _parse(col: str, value: str) -> Any:
    if value == "":
        return None
    if col in _FLOAT_COLS:
        return float(value)
    if col in _INT_COLS:
        return int(float(value))
    return value


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "results.csv"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no results.csv (is this a run folder?)")
    with path.open(newline="") as f:
        return [{c: _parse(c, r.get(c, "")) for c in COLUMNS} for r in csv.DictReader(f)]


def read_samples(run_dir: Path) -> dict[tuple[str, ...], list[float]]:
    out: dict[tuple[str, ...], list[float]] = {}
    path = run_dir / "samples.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[row_key(rec["key"])] = [float(s) for s in rec["samples_us"]]
    return out


def read_metadata(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def read_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[tuple[str, ...], list[float]], dict[str, Any]]:
    return read_rows(run_dir), read_samples(run_dir), read_metadata(run_dir)


def list_runs(results_dir: Path = RESULTS_DIR) -> list[Path]:
    """Run folders under results/, oldest first (run ids start with a UTC timestamp)."""
    return sorted((p.parent for p in results_dir.glob("*/*/results.csv")), key=lambda p: p.name)
