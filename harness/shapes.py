"""Model shape files: `shapes/<model>.yaml`, one per model, feeding every kernel spec.

A file holds the model's published architecture values (with the source they were read from), the
tensor-parallel degree the per-GPU shapes assume, and the regimes to sweep.  Specs read what they need
through `ModelShapes.get`, which names the file and key in every error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

SHAPES_DIR = Path(__file__).resolve().parent.parent / "shapes"

_MISSING = object()


class ShapeError(ValueError):
    """A shape file is missing, malformed or lacks a key a spec needs."""


# key path -> expected type(s); a section is validated only when present, except the top-level ones.
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "display_name": str,
    "source": str,
    "tp": int,
    "hidden_size": int,
    "regimes": dict,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "vocab_size": int,
    "attention": dict,
    "attention.kind": str,
    "attention.num_q_heads": int,
    "attention.num_kv_heads": int,
    "attention.head_dim": int,
    "moe": dict,
    "moe.num_experts": int,
    "moe.num_shared_experts": int,
    "moe.top_k": int,
    "moe.intermediate_size": int,
    "moe.tuned_for_tp": int,
    "regimes.decode": dict,
    "regimes.decode.tokens": list,
    "regimes.decode.kv_lens": list,
    "regimes.prefill": dict,
    "regimes.prefill.tokens": list,
    "regimes.quick": dict,
    "regimes.quick.decode_tokens": list,
    "regimes.quick.prefill_tokens": list,
}


def _lookup(data: Any, path: str) -> Any:
    cur = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


@dataclasses.dataclass(frozen=True)
class ModelShapes:
    name: str
    path: Path
    data: dict[str, Any]

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """Value at dotted `key`; a missing key raises ShapeError naming the file and key."""
        value = _lookup(self.data, key)
        if value is _MISSING:
            if default is not _MISSING:
                return default
            raise ShapeError(f"{self.path}: missing key '{key}'")
        return value

    def has(self, key: str) -> bool:
        return _lookup(self.data, key) is not _MISSING

    @property
    def tp(self) -> int:
        return int(self.data["tp"])

    def tokens(self, regime: str, quick: bool = False) -> list[int]:
        """Token counts of a regime ('decode' or 'prefill'); quick mode takes the `regimes.quick` subset."""
        if quick and self.has(f"regimes.quick.{regime}_tokens"):
            return [int(t) for t in self.get(f"regimes.quick.{regime}_tokens")]
        return [int(t) for t in self.get(f"regimes.{regime}.tokens", [])]


def validate(data: Any, path: Path) -> None:
    if not isinstance(data, dict):
        raise ShapeError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    for key, typ in _REQUIRED.items():
        value = _lookup(data, key)
        if value is _MISSING:
            raise ShapeError(f"{path}: missing key '{key}'")
        if not isinstance(value, typ) or isinstance(value, bool):
            raise ShapeError(f"{path}: key '{key}' must be {getattr(typ, '__name__', typ)}, got {value!r}")
    for key, typ in _OPTIONAL.items():
        value = _lookup(data, key)
        if value is _MISSING:
            continue
        if not isinstance(value, typ) or isinstance(value, bool):
            raise ShapeError(f"{path}: key '{key}' must be {getattr(typ, '__name__', typ)}, got {value!r}")
        if typ is int and value <= 0:
            raise ShapeError(f"{path}: key '{key}' must be positive, got {value}")
        if typ is list:
            if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
                raise ShapeError(f"{path}: key '{key}' must be a non-empty list of positive integers, got {value!r}")
    if data["name"] != path.stem:
        raise ShapeError(f"{path}: key 'name' is {data['name']!r} but the file is named {path.stem!r}")
    moe = data.get("moe")
    if isinstance(moe, dict):
        for key in ("num_experts", "top_k", "intermediate_size"):
            if key not in moe:
                raise ShapeError(f"{path}: missing key 'moe.{key}'")
        if moe["top_k"] > moe["num_experts"]:
            raise ShapeError(f"{path}: key 'moe.top_k' ({moe['top_k']}) exceeds moe.num_experts")
        if moe["intermediate_size"] % data["tp"]:
            raise ShapeError(f"{path}: key 'moe.intermediate_size' is not divisible by tp={data['tp']}")


def load_file(path: Path) -> ModelShapes:
    try:
        text = path.read_text()
    except OSError as e:
        raise ShapeError(f"{path}: cannot read ({e.strerror})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ShapeError(f"{path}:{where} malformed YAML: {getattr(e, 'problem', e)}") from e
    validate(data, path)
    return ModelShapes(name=data["name"], path=path, data=data)


def available_models(shapes_dir: Path = SHAPES_DIR) -> list[str]:
    return sorted(p.stem for p in shapes_dir.glob("*.yaml"))


def load_model(name: str, shapes_dir: Path = SHAPES_DIR) -> ModelShapes:
    path = shapes_dir / f"{name}.yaml"
    if not path.exists():
        raise ShapeError(f"unknown model '{name}'; valid: {', '.join(available_models(shapes_dir)) or '(none)'}")
    return load_file(path)


def load_all(shapes_dir: Path = SHAPES_DIR) -> list[ModelShapes]:
    return [load_file(shapes_dir / f"{n}.yaml") for n in available_models(shapes_dir)]
