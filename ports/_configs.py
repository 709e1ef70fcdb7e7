"""Shipped tuned configs of the Helion ports: `ports/configs/<gpu_slug>/<kernel>.json`.

File format (one file per GPU and catalog kernel):

    {"<bucket key>": {"<helion kernel name>": {<config dict>}, ..., "_tuned": {<provenance>}}, ...}

The bucket key names the dtype and every case dim except the bucketed one (the spec's `token_dim`, e.g. `M`),
which is rounded up to the nearest of `M_BUCKETS`, e.g. ``dtype=bf16,E=128,N=192,K=4096,top_k=8,M<=32``.  Entries whose
name starts with ``_`` are provenance (tuning date, helion version, measured time), never configs.

`lookup` never tunes: a missing file or bucket returns ``(None, "default (...)")`` and the port falls back to
its fixed default config.  `scripts/tune.py` writes entries with `save`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_REPO_ROOT = CONFIG_DIR.parent.parent

#: token-count buckets: a case uses the entry of the nearest bucket >= its M
M_BUCKETS = (1, 8, 32, 128, 512, 2048, 8192, 16384)

#: case dims that never change the kernel (tensor-parallel degree only derives N, already in the key)
_IGNORED_DIMS = ("tp",)

Configs = dict[str, dict[str, Any]]


def gpu_slug_here() -> str:
    """Slug of the current CUDA device ('h100'), or 'cpu' without one."""
    import torch

    from harness.results import gpu_slug

    if torch.cuda.is_available():
        return gpu_slug(torch.cuda.get_device_name())
    return "cpu"


def bucket(value: int, buckets: tuple[int, ...] = M_BUCKETS) -> str:
    """'<=b' for the smallest bucket b >= value, '>last' past the last bucket."""
    if value < 1:
        raise ValueError(f"bucketed dim must be positive, got {value}")
    for b in buckets:
        if value <= b:
            return f"<={b}"
    return f">{buckets[-1]}"


def bucket_key(dims: Mapping[str, Any], dtype: str, bucket_dim: str | None = "M") -> str:
    """``dtype=<dtype>,<dim>=<v>,...,<bucket_dim><=<b>`` with the dims in the order given; every dim exact when
    `bucket_dim` is None (a kernel without a token axis)."""
    if bucket_dim is None:
        return ",".join([f"dtype={dtype}"] + [f"{k}={v}" for k, v in dims.items() if k not in _IGNORED_DIMS])
    if bucket_dim not in dims:
        raise KeyError(f"case dims {dict(dims)} have no bucketed dim {bucket_dim!r}")
    parts = [f"dtype={dtype}"]
    parts += [f"{k}={v}" for k, v in dims.items() if k != bucket_dim and k not in _IGNORED_DIMS]
    parts.append(f"{bucket_dim}{bucket(int(dims[bucket_dim]))}")
    return ",".join(parts)


def _same_key(a: str, b: str) -> bool:
    return sorted(a.split(",")) == sorted(b.split(","))


def config_path(kernel: str, gpu_slug: str, config_dir: Path | None = None) -> Path:
    return (config_dir or CONFIG_DIR) / gpu_slug / f"{kernel}.json"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(_REPO_ROOT))
    except ValueError:
        return str(path)


def load_file(kernel: str, gpu_slug: str, config_dir: Path | None = None) -> dict[str, Any]:
    """The whole JSON file ({} when absent); a malformed file raises ValueError naming it."""
    path = config_path(kernel, gpu_slug, config_dir)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be an object of bucket keys")
    return data


def lookup(
    kernel: str,
    gpu_slug: str,
    case_dims: Mapping[str, Any],
    dtype: str,
    bucket_dim: str | None = "M",
    config_dir: Path | None = None,
) -> tuple[Configs | None, str]:
    """(configs by Helion kernel name, source) of the tuned entry for this case, or (None, 'default (...)')."""
    key = bucket_key(case_dims, dtype, bucket_dim)
    path = config_path(kernel, gpu_slug, config_dir)
    data = load_file(kernel, gpu_slug, config_dir)
    entry = data.get(key)
    if entry is None:  # the same dims written in another order (a key names each dim: the order carries nothing)
        key = next((k for k in data if _same_key(k, key)), key)
        entry = data.get(key)
    if not entry:
        return None, f"default (no tuned entry for {key} on {gpu_slug})"
    configs = {name: dict(cfg) for name, cfg in entry.items() if not name.startswith("_")}
    return configs, f"{_display(path)}[{key}]"


def save(
    kernel: str,
    gpu_slug: str,
    case_dims: Mapping[str, Any],
    dtype: str,
    configs: Mapping[str, Mapping[str, Any]],
    provenance: Mapping[str, Any] | None = None,
    bucket_dim: str | None = "M",
    config_dir: Path | None = None,
) -> str:
    """Write (replace) the entry of this case's bucket; returns the bucket key.  Atomic file replace."""
    key = bucket_key(case_dims, dtype, bucket_dim)
    data = load_file(kernel, gpu_slug, config_dir)
    entry: dict[str, Any] = {name: dict(cfg) for name, cfg in configs.items()}
    if provenance:
        entry["_tuned"] = dict(provenance)
    data[key] = entry
    save_all(kernel, gpu_slug, data, config_dir)
    return key


@contextlib.contextmanager
def locked(kernel: str, gpu_slug: str, config_dir: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on this kernel's config file (two `make tune` processes, e.g. one per GPU, then
    never lose each other's entries in a read-modify-write)."""
    path = config_path(kernel, gpu_slug, config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def save_all(kernel: str, gpu_slug: str, data: Mapping[str, Any], config_dir: Path | None = None) -> Path:
    """Replace the whole file (atomically: write a temp file, then rename)."""
    path = config_path(kernel, gpu_slug, config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(data), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
