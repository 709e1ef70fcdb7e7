"""The public results format: one append-only folder per run.

results/<gpu-slug>/<run-id>/
    results.csv.gz  one row per kernel x impl x model x shape x dtype (COLUMNS below, in that order), gzipped CSV
                    (`pandas.read_csv` reads it as it is); `results.csv` (plain) while the run is in flight, in a
                    run that was stopped, and in runs written before the compressed form (`harness pack`
                    compresses those)
    samples.jsonl.gz  per-repetition device times of every `ok` row, one JSON object a line:
                    {"key": {...ROW_KEY...}, "samples_us": [...]}; `samples.jsonl` (plain) while the run is
                    in flight and in runs written before the compressed form
    metadata.json   GPU, driver, versions (torch, triton, helion, each upstream), git commit, date, seed,
                    measured ceilings and how they were measured, the command line, `token_dims` (each kernel's
                    token dim), `planned_rows` (written first) and `complete` (written last, by `finish`);
                    `gpus` (the device indices the sweep ran on), `row_cost_s` (wall seconds per row, mean per
                    kernel, the runner's clock); a shard (`bench --shard i/n`) adds `shard` {index, count,
                    plan_rows, plan_digest}; a merge (`harness merge`) adds `merged_from` and, when a shard is
                    missing or was stopped, `incomplete` (which shards and rows) instead of `complete`
    plan.json.gz    shards only: the whole plan's row keys with the shard each belongs to (what `merge` names
                    missing rows from)
    logs/           the workers' stderr

A failure is a row with a status and an `error`, never a 0.0 time: timing columns of non-`ok` rows are empty.
Readers (reports, compare) use `read_run` / `load`, never kernels; both refuse a corrupt or (unless asked)
incomplete run with a `RunError` naming the file, line and column.

    >>> from harness import results
    >>> df = results.load("results/h100/*")        # one pandas DataFrame over every H100 run
    >>> df[df.status == "ok"].groupby(["kernel", "impl"]).median_us.median()
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

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
    "gpu",  # CUDA device index the row was timed on (`bench --gpus`); empty on CPU and in runs before the column
)

#: the columns of runs written before `gpu` was added: readers accept this header and leave `gpu` empty
LEGACY_COLUMNS = COLUMNS[:-1]

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


#: the guess for runs written before metadata.json recorded `token_dims` (each spec's `token_dim`): the dim
#: names old specs gave their token count, first wins
LEGACY_TOKEN_KEYS = ("M", "tokens", "T")


def token_dim(meta: Mapping[str, Any], kernel: str, params: Mapping[str, Any]) -> str | None:
    """The kernel's token dim as the run recorded it (`metadata.json` `token_dims`), or for an old run without
    that record the first of LEGACY_TOKEN_KEYS the shape has; None for a kernel without a token axis."""
    dims = meta.get("token_dims")
    if isinstance(dims, Mapping) and kernel in dims:
        dim = dims[kernel]
        return dim if isinstance(dim, str) and dim in params else None
    return next((k for k in LEGACY_TOKEN_KEYS if k in params), None)


def token_count(meta: Mapping[str, Any], kernel: str, params: Mapping[str, Any]) -> int | None:
    """The case's token count (see `token_dim`), or None."""
    dim = token_dim(meta, kernel, params)
    return None if dim is None else int(params[dim])


class RunError(ValueError):
    """A run folder that is corrupt or incomplete; the message is one line naming the file (and line, column)."""


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


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: a reader (or a crash) sees the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append_line(path: Path, line: str) -> None:
    # one write of a whole line, synced: a killed sweep leaves every finished row intact (at worst the line in
    # flight is cut, which the reader reports by line number)
    with path.open("a", newline="") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def gzip_bytes(data: bytes) -> bytes:
    """gzip without a timestamp or file name: the same samples always give the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


SAMPLES = "samples.jsonl"
SAMPLES_GZ = "samples.jsonl.gz"
RESULTS_CSV = "results.csv"
RESULTS_GZ = "results.csv.gz"


def results_file(run_dir: Path) -> Path | None:
    """The run's results table: results.csv.gz (a finished or packed run), else results.csv, else None."""
    for name in (RESULTS_GZ, RESULTS_CSV):
        path = Path(run_dir) / name
        if path.exists():
            return path
    return None


def is_run_dir(path: Path) -> bool:
    """Whether `path` is a run folder (it holds results.csv.gz or results.csv)."""
    return results_file(path) is not None


def _compress_verified(plain: Path, gz: Path) -> None:
    """Write `gz` from `plain`, read it back, and only then remove `plain` (nothing is lost on any failure)."""
    data = plain.read_bytes()
    write_atomic(gz, gzip_bytes(data))
    if gzip.decompress(gz.read_bytes()) != data:
        raise RunError(f"{gz}: reads back different from {plain}; kept both")
    plain.unlink()


class RunWriter:
    """Writes a run folder incrementally: each row is flushed as soon as it is known, so a crash loses nothing.

    `planned_rows` goes into metadata.json first; `finish()` compresses the samples and writes the completion
    mark last, so a run stopped half way keeps its finished rows and reads as incomplete."""

    def __init__(self, run_dir: Path, metadata: dict[str, Any], planned_rows: int | None = None) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = metadata
        if planned_rows is not None:
            self.metadata["planned_rows"] = planned_rows
        self.metadata.pop("complete", None)
        self.rows_written = 0
        self.write_metadata()
        self._csv_path = run_dir / RESULTS_CSV
        buf = io.StringIO()
        csv.writer(buf).writerow(COLUMNS)
        write_atomic(self._csv_path, buf.getvalue().encode())
        self._samples_path = run_dir / SAMPLES
        self._samples_path.write_text("")

    def write_metadata(self) -> None:
        write_atomic(self.run_dir / "metadata.json",
                     (json.dumps(self.metadata, indent=2, sort_keys=True) + "\n").encode())

    def add(self, row: dict[str, Any], samples_us: Iterable[float] | None = None) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        if row.get("status") not in STATUSES:
            raise ValueError(f"bad status {row.get('status')!r}; valid: {STATUSES}")
        buf = io.StringIO()
        csv.writer(buf).writerow([_fmt(row.get(c)) for c in COLUMNS])
        _append_line(self._csv_path, buf.getvalue())
        self.rows_written += 1
        if samples_us:
            key = {k: _fmt(row.get(k, "")) for k in ROW_KEY}  # the same text as the CSV cells
            _append_line(self._samples_path,
                         json.dumps({"key": key, "samples_us": [round(s, 4) for s in samples_us]}) + "\n")

    def finish(self) -> None:
        """Compress the results table and the samples, then write the completion mark (last: everything before it
        is on disk)."""
        _compress_verified(self._csv_path, self.run_dir / RESULTS_GZ)
        _compress_verified(self._samples_path, self.run_dir / SAMPLES_GZ)
        self.metadata["complete"] = {"rows": self.rows_written}
        self.write_metadata()


def _parse(col: str, value: str) -> Any:
    if value == "":
        return None
    if col in _FLOAT_COLS:
        return float(value)
    if col in _INT_COLS:
        return int(float(value))
    return value


def _csv_rows(run_dir: Path, allow_incomplete: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """The parsed rows and whether a cut last line was dropped (only with allow_incomplete)."""
    path = results_file(run_dir)
    if path is None:
        raise FileNotFoundError(f"{run_dir}: no results.csv(.gz) (is this a run folder?)")
    text = _read_text(path)
    cut = False
    if text and not text.endswith("\n"):
        # the line in flight when the sweep stopped: never half a row
        n = text.count("\n") + 1
        if not allow_incomplete:
            raise RunError(f"{path}: line {n}: cut mid-row (no line end): the run was stopped while writing it")
        text, cut = text[: text.rfind("\n") + 1], True
    lines = list(csv.reader(io.StringIO(text, newline="")))
    header = tuple(lines[0]) if lines else ()
    if header not in (COLUMNS, LEGACY_COLUMNS):
        got = ",".join(lines[0]) if lines else "(empty file)"
        raise RunError(f"{path}: line 1: header is not the results columns ({_one_line(got, 80)})")
    out = []
    for n, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            raise RunError(f"{path}: line {n}: {len(cells)} of {len(header)} columns (cut or corrupt row)")
        row = dict.fromkeys(COLUMNS)  # a column the run predates reads as empty
        for col, value in zip(header, cells):
            try:
                row[col] = _parse(col, value)
            except ValueError:
                raise RunError(f"{path}: line {n}, column {col}: {_one_line(value, 40)!r} is not a number") from None
        if row["status"] not in STATUSES:
            raise RunError(f"{path}: line {n}, column status: {_one_line(row['status'], 40)!r} is not one of "
                           f"{', '.join(STATUSES)}")
        out.append(row)
    return out, cut


def _one_line(s: Any, limit: int) -> str:
    text = " ".join(str(s).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_rows(run_dir: Path, allow_incomplete: bool = False) -> list[dict[str, Any]]:
    """Every row of the results table, typed; a malformed file raises RunError (file, line, column)."""
    return _csv_rows(Path(run_dir), allow_incomplete)[0]


def _read_text(path: Path) -> str:
    """A run file's text, gunzipped when its name ends in .gz (line ends as written); a bad gzip is a RunError."""
    if path.suffix == ".gz":
        try:
            return gzip.decompress(path.read_bytes()).decode()
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise RunError(f"{path}: not a readable gzip file ({e})") from None
    with path.open(newline="") as f:
        return f.read()


def _samples_text(run_dir: Path) -> tuple[Path, str] | None:
    for path in (run_dir / SAMPLES_GZ, run_dir / SAMPLES):
        if path.exists():
            return path, _read_text(path)
    return None


def read_samples(run_dir: Path, allow_incomplete: bool = False) -> dict[tuple[str, ...], list[float]]:
    out: dict[tuple[str, ...], list[float]] = {}
    found = _samples_text(Path(run_dir))
    if found is None:
        return out
    path, text = found
    lines = text.split("\n")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out[row_key(rec["key"])] = [float(s) for s in rec["samples_us"]]
        except (ValueError, KeyError, TypeError) as e:
            if allow_incomplete and n == len(lines):  # the record in flight when the sweep stopped
                continue
            raise RunError(f"{path}: line {n}: not a samples record ({type(e).__name__}: {_one_line(e, 60)})") \
                from None
    return out


def read_metadata(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "metadata.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise RunError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise RunError(f"{path}: not a JSON object")
    return meta


def completeness(run_dir: Path, meta: Mapping[str, Any], n_rows: int) -> str | None:
    """Why the run is incomplete (one line), or None when it is complete or predates completion marks."""
    path = Path(run_dir) / "metadata.json"
    planned, done = meta.get("planned_rows"), meta.get("complete")
    if planned is None and done is None:
        return None  # written before runs recorded their plan: only the rows themselves can be checked
    if not isinstance(done, Mapping):
        if isinstance(meta.get("incomplete"), str):  # a merge of shards, one missing or stopped: it says which
            return f"{path}: incomplete run: {n_rows} of {planned} planned rows: {meta['incomplete']}"
        return (f"{path}: incomplete run: {n_rows} of {planned} planned rows and no completion mark "
                "(the sweep was stopped)")
    if done.get("rows") != n_rows:
        return f"{results_file(Path(run_dir))}: {n_rows} rows but the completion mark says {done.get('rows')}"
    return None


def read_run(run_dir: Path, allow_incomplete: bool = False
             ) -> tuple[list[dict[str, Any]], dict[tuple[str, ...], list[float]], dict[str, Any]]:
    """Rows, samples and metadata of a run, checked: a corrupt file or (unless allow_incomplete) an incomplete
    run raises RunError before anything is returned."""
    run_dir = Path(run_dir)
    meta = read_metadata(run_dir)
    rows, _cut = _csv_rows(run_dir, allow_incomplete)
    why = completeness(run_dir, meta, len(rows))
    if why and not allow_incomplete:
        raise RunError(why)
    return rows, read_samples(run_dir, allow_incomplete), meta


def _expand(pattern: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(pattern, (str, Path)):
        pats = [pattern]
    else:
        pats = list(pattern)
    runs: list[Path] = []
    for pat in pats:
        p = Path(pat)
        if is_run_dir(p):
            runs.append(p)
            continue
        hits = sorted(Path(h) for h in glob.glob(str(pat)))
        found = [h for h in hits if is_run_dir(h)] or \
            [h.parent for h in hits if h.name in (RESULTS_CSV, RESULTS_GZ)]
        if not found:
            found = [r for h in hits if h.is_dir() for r in list_runs(h)]
        if not found:
            raise RunError(f"{pat}: no run folder (a folder with results.csv or results.csv.gz) matches")
        runs += found
    return list(dict.fromkeys(runs))


def load(runs: str | Path | Sequence[str | Path], allow_incomplete: bool = False) -> pd.DataFrame:
    """One pandas DataFrame over one or more runs (a run folder, a glob such as "results/h100/*", or a list).

    Columns: every results column typed (floats, n_samples as Int64, text as string; the CSV's `gpu`, the device
    index, as `gpu_index`), `run` (run id), `gpu` (the GPU's name), `gpu_slug`, `tokens`
    (the token count under the run's recorded token dim), and each shape dim as its own
    column (`dim_<name>` where a dim is named like a results column)."""
    import pandas as pd

    frames = []
    for run in _expand(runs):
        rows, _samples, meta = read_run(run, allow_incomplete)
        frame = pd.DataFrame(rows, columns=list(COLUMNS)).rename(columns={"gpu": "gpu_index"})
        frame.insert(0, "run", run.name)
        frame.insert(1, "gpu", str(meta.get("gpu") or ""))
        frame.insert(2, "gpu_slug", str(meta.get("gpu_slug") or run.parent.name))
        params = [_shape_params(r["shape"]) for r in rows]
        frame["tokens"] = pd.array([token_count(meta, str(r["kernel"]), p) if _tokenish(meta, r, p) else None
                                    for r, p in zip(rows, params)], dtype="Int64")
        dims = sorted({k for p in params for k in p})
        for d in dims:
            name = d if d not in frame.columns else f"dim_{d}"
            values = [p.get(d) for p in params]
            if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values):
                frame[name] = pd.array(values, dtype="Int64")
            elif all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
                frame[name] = pd.array(values, dtype="Float64")
            else:
                frame[name] = pd.array([None if v is None else json.dumps(v) if not isinstance(v, str) else v
                                        for v in values], dtype="string")
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "gpu", "gpu_slug", *(c if c != "gpu" else "gpu_index" for c in COLUMNS), "tokens"])
    for col in (c if c != "gpu" else "gpu_index" for c in COLUMNS):
        if col in _FLOAT_COLS:
            df[col] = df[col].astype("float64")
        elif col in _INT_COLS:
            df[col] = df[col].astype("Int64")
        else:
            df[col] = df[col].astype("string")
    for col in ("run", "gpu", "gpu_slug"):
        df[col] = df[col].astype("string")
    return df


def _tokenish(meta: Mapping[str, Any], row: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    dim = token_dim(meta, str(row["kernel"]), params)
    v = params.get(dim) if dim else None
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shape_params(shape: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(str(shape or ""))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def list_runs(results_dir: Path = RESULTS_DIR) -> list[Path]:
    """Run folders under results/ (or a results/<gpu>/ folder), oldest first (run ids start with a UTC
    timestamp)."""
    results_dir = Path(results_dir)
    found = {p.parent for name in (RESULTS_CSV, RESULTS_GZ) for pat in (f"*/*/{name}", f"*/{name}")
             for p in results_dir.glob(pat)}
    return sorted(found, key=lambda p: (p.name, str(p)))


def pack_run(run_dir: Path, allow_incomplete: bool = False) -> str:
    """Compress a run's plain results.csv (and samples.jsonl) into their .gz forms, verified before the plain
    file goes; one line says what was done.  A run without a completion mark may still be in flight (a sweep
    appending to it), so it is packed only with allow_incomplete; a file whose .gz twin already exists is left
    as it is (RunError): which one holds the rows is for a person to decide."""
    run_dir = Path(run_dir)
    plain = run_dir / RESULTS_CSV
    if not is_run_dir(run_dir):
        raise RunError(f"{run_dir}: no results.csv or results.csv.gz (is this a run folder?)")
    if not plain.exists() and not (run_dir / SAMPLES).exists():
        return f"{run_dir}: already packed"
    meta = read_metadata(run_dir)
    rows, cut = _csv_rows(run_dir, allow_incomplete=True)
    unfinished = cut or (completeness(run_dir, meta, len(rows)) is not None and "complete" not in meta)
    if unfinished and not allow_incomplete:
        raise RunError(f"{run_dir}: no completion mark (a stopped run, or one still being written); "
                       "pack it with --allow-incomplete once no sweep writes to it")
    done = []
    for name, gz_name in ((RESULTS_CSV, RESULTS_GZ), (SAMPLES, SAMPLES_GZ)):
        src, dst = run_dir / name, run_dir / gz_name
        if not src.exists():
            continue
        if dst.exists():
            raise RunError(f"{run_dir}: both {name} and {gz_name} exist; left as they are")
        _compress_verified(src, dst)
        done.append(gz_name)
    return f"{run_dir}: wrote {', '.join(done)} ({len(rows)} rows)"


PLAN = "plan.json.gz"


def write_plan(run_dir: Path, count: int, digest: str, keyed: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
    """A shard's record of the whole plan: (shard index, row) for every planned row, as ROW_KEY text."""
    rows = [[shard, *(_fmt(row.get(k, "")) for k in ROW_KEY)] for shard, row in keyed]
    data = json.dumps({"count": count, "digest": digest, "key": ["shard", *ROW_KEY], "rows": rows},
                      separators=(",", ":")).encode()
    write_atomic(Path(run_dir) / PLAN, gzip_bytes(data))


def read_plan(run_dir: Path) -> dict[tuple[str, ...], int] | None:
    """{row key: shard index} of a shard's plan.json.gz, or None when the run has none."""
    path = Path(run_dir) / PLAN
    if not path.exists():
        return None
    try:
        rec = json.loads(gzip.decompress(path.read_bytes()))
        return {tuple(str(c) for c in r[1:]): int(r[0]) for r in rec["rows"]}
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as e:
        raise RunError(f"{path}: not a plan record ({type(e).__name__}: {_one_line(e, 60)})") from None
