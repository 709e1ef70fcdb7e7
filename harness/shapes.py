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
#: every key a spec reads (grep `.get("` / `.has("` in harness/specs): ints and floats must be > 0 unless listed
#: in _ZERO_OK; a numeric key not listed here is still held to > 0 by `validate` (a new key cannot slip through)
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "vocab_size": int,
    "num_layers": int,
    "rms_norm_eps": float,
    "attention": dict,
    "attention.kind": str,
    "attention.num_q_heads": int,
    "attention.num_kv_heads": int,
    "attention.head_dim": int,
    "attention.chunk_size": int,
    "attention.sliding_window": int,
    "attention.sliding_window_pattern": int,
    "attention.query_pre_attn_scalar": int,
    "attention.partial_rotary_factor": (int, float),
    "attention.output_gate": bool,
    "mla": dict,
    "mla.q_lora_rank": (int, type(None)),  # None: the model projects q without a low-rank step
    "mla.kv_lora_rank": int,
    "mla.qk_nope_head_dim": int,
    "mla.qk_rope_head_dim": int,
    "mla.v_head_dim": int,
    "mla.use_rope": bool,
    "dsa": dict,
    "dsa.index_n_heads": int,
    "dsa.index_head_dim": int,
    "dsa.index_topk": int,
    "mlp": dict,
    "mlp.intermediate_size": int,
    "mlp.activation": str,
    "moe": dict,
    "moe.num_experts": int,
    "moe.num_shared_experts": int,
    "moe.top_k": int,
    "moe.intermediate_size": int,
    "moe.tuned_for_tp": int,
    "moe.shared_intermediate_size": int,
    "moe.dense_intermediate_size": int,
    "moe.first_k_dense_replace": int,
    "moe.layer_step": int,
    "moe.n_group": int,
    "moe.topk_group": int,
    "moe.routed_scaling_factor": (int, float),
    "moe.scoring_func": str,
    "moe.num_zero_experts": int,
    "moe.router_logit_softcapping": (int, float),
    "linear_attention": dict,
    "linear_attention.kind": str,
    "linear_attention.num_heads": int,
    "linear_attention.num_k_heads": int,
    "linear_attention.num_v_heads": int,
    "linear_attention.head_k_dim": int,
    "linear_attention.head_v_dim": int,
    "linear_attention.conv_kernel": int,
    "linear_attention.num_layers": int,
    "ssm": dict,
    "ssm.kind": str,
    "ssm.d_inner": int,
    "ssm.d_state": int,
    "ssm.d_conv": int,
    "ssm.expand": int,
    "ssm.headdim": int,
    "ssm.nheads": int,
    "ssm.ngroups": int,
    "ssm.chunk_size": int,
    "regimes.decode": dict,
    "regimes.decode.tokens": list,
    "regimes.decode.kv_lens": list,
    "regimes.prefill": dict,
    "regimes.prefill.tokens": list,
    "regimes.quick": dict,
    "regimes.quick.decode_tokens": list,
    "regimes.quick.prefill_tokens": list,
}
#: counts that may be 0 (a model without shared experts, without leading dense layers, without zero experts)
_ZERO_OK = {"moe.num_shared_experts", "moe.first_k_dense_replace", "moe.num_zero_experts"}
#: (key, divisor key, why): the kernels shard or group along these dims, so a remainder plans impossible shapes
_DIVISIBLE = (
    ("attention.num_q_heads", "tp", "query heads are split across the TP ranks"),
    ("attention.num_q_heads", "attention.num_kv_heads", "GQA groups query heads per KV head"),
    # (moe.intermediate_size % tp is checked with the other moe keys below)
    ("linear_attention.num_heads", "tp", "heads are split across the TP ranks"),
    ("linear_attention.num_v_heads", "tp", "heads are split across the TP ranks"),
    ("linear_attention.num_k_heads", "tp", "heads are split across the TP ranks"),
    ("linear_attention.num_v_heads", "linear_attention.num_k_heads", "value heads are grouped per key head"),
    ("ssm.nheads", "tp", "heads are split across the TP ranks"),
    ("ssm.nheads", "ssm.ngroups", "heads are grouped per B/C group"),
    ("moe.num_experts", "moe.n_group", "grouped routing splits the experts into n_group groups"),
)


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
    if data["tp"] <= 0:
        raise ShapeError(f"{path}: key 'tp' must be positive, got {data['tp']}")
    if data["hidden_size"] <= 0:
        raise ShapeError(f"{path}: key 'hidden_size' must be positive, got {data['hidden_size']}")
    for key, typ in _OPTIONAL.items():
        value = _lookup(data, key)
        if value is _MISSING:
            continue
        types = typ if isinstance(typ, tuple) else (typ,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ShapeError(f"{path}: key '{key}' must be {names}, got {value!r}")
        if list in types:
            if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
                raise ShapeError(f"{path}: key '{key}' must be a non-empty list of positive integers, got {value!r}")
    for key, value in _numeric_leaves(data):
        # every number a model file holds is a size, count, rate or epsilon: none is negative, and only the
        # counts in _ZERO_OK may be 0 (this also covers keys a new spec reads before _OPTIONAL lists them)
        if value < 0 or (value == 0 and key not in _ZERO_OK):
            raise ShapeError(f"{path}: key '{key}' must be {'>= 0' if key in _ZERO_OK else 'positive'}, got {value}")
    for key, div, why in _DIVISIBLE:
        a, b = _lookup(data, key), _lookup(data, div)
        if isinstance(a, int) and isinstance(b, int) and b > 0 and a % b:
            raise ShapeError(f"{path}: key '{key}' ({a}) is not divisible by {div} ({b}): {why}")
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


def _numeric_leaves(data: Any, prefix: str = "") -> list[tuple[str, int | float]]:
    """(dotted key, value) of every int/float outside lists (lists are token counts, checked above)."""
    out: list[tuple[str, int | float]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out += _numeric_leaves(v, key)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((key, v))
    return out


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
