"""shapes/*.yaml: every shipped model file loads, and the loader rejects broken files with a useful message.

The bad files are written to tmp_path, so the shipped shapes/ folder is only ever read.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.shapes import SHAPES_DIR, ModelShapes, ShapeError, available_models, load_all, load_file, load_model

EXPECTED_MODELS = {
    "deepseek-v3",
    "gemma3-27b",
    "gla-2.7b",
    "grok-2",
    "kimi-k2",
    "kimi-linear-48b-a3b",
    "llama4-maverick",
    "llama4-scout",
    "longcat-flash-chat",
    "mamba2-2.7b",
    "mistral-large-3",
    "qwen3-235b-a22b",
    "qwen3-next-80b-a3b",
    "rwkv4-3b-pile",
    "rwkv6-7b-finch",
    "rwkv7-1.5b-world",
}

# The sweep every model shares (the project brief); a file drifting from it is a bug, not a choice.
NON_EMPTY = "must be a non-empty list of positive integers"

EXPECTED_REGIMES = {
    "decode": {"tokens": [1, 8, 32, 128, 512], "kv_lens": [1024, 8192, 32768, 131072]},
    "prefill": {"tokens": [2048, 8192, 16384]},
    "quick": {"decode_tokens": [1, 32, 512], "prefill_tokens": [2048]},
}

VALID: dict[str, Any] = {
    "name": "toy",
    "display_name": "Toy MoE",
    "source": "https://example.invalid/config.json",
    "tp": 2,
    "hidden_size": 64,
    "attention": {"kind": "gqa", "num_q_heads": 4, "num_kv_heads": 2, "head_dim": 16},
    "moe": {"num_experts": 8, "num_shared_experts": 1, "top_k": 2, "intermediate_size": 96},
    "regimes": copy.deepcopy(EXPECTED_REGIMES),
}


def write(tmp_path: Path, stem: str, data: Any) -> Path:
    path = tmp_path / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def valid(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    data.update(overrides)
    return data


# --- the shipped files ---------------------------------------------------------------------------------------


def test_every_shipped_file_loads() -> None:
    models = load_all()
    assert {m.name for m in models} == EXPECTED_MODELS
    assert available_models() == sorted(EXPECTED_MODELS)
    for m in models:
        assert m.path.parent == SHAPES_DIR
        assert m.name == m.path.stem


@pytest.fixture(scope="module", params=sorted(EXPECTED_MODELS))
def model(request: pytest.FixtureRequest) -> ModelShapes:
    return load_model(request.param)


def test_regimes_are_the_shared_sweep(model: ModelShapes) -> None:
    assert model.get("regimes") == EXPECTED_REGIMES
    assert model.tokens("decode") == EXPECTED_REGIMES["decode"]["tokens"]
    assert model.tokens("decode", quick=True) == [1, 32, 512]
    assert model.tokens("prefill", quick=True) == [2048]


def test_source_is_a_published_config(model: ModelShapes) -> None:
    # Every value was checked against the model's own published config (config.json, or Mistral's params.json).
    assert re.fullmatch(r"https://huggingface\.co/[\w.-]+/[\w.-]+/blob/main/(config|params)\.json", model.get("source"))


def test_moe_shapes_are_consistent(model: ModelShapes) -> None:
    if not model.has("moe"):
        pytest.skip(f"{model.name} is dense: no moe section")
    e, k, inter, tp = model.get("moe.num_experts"), model.get("moe.top_k"), model.get("moe.intermediate_size"), model.tp
    assert 1 <= k <= e
    assert inter % tp == 0
    # A tuned-for TP, where recorded, is the TP the file's per-GPU shapes assume.
    assert model.get("moe.tuned_for_tp", tp) == tp


def test_attention_heads_split_over_tp(model: ModelShapes) -> None:
    if not model.has("attention"):
        pytest.skip(f"{model.name} has no attention layers")
    assert model.get("attention.num_q_heads") % model.tp == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Spot checks of the values most easily confused (per-expert width vs dense width, shared experts).
        ("deepseek-v3", {"hidden_size": 7168, "moe.num_experts": 256, "moe.intermediate_size": 2048, "tp": 8}),
        ("kimi-k2", {"moe.num_experts": 384, "attention.num_q_heads": 64, "moe.intermediate_size": 2048}),
        ("mistral-large-3", {"moe.num_experts": 128, "moe.top_k": 4, "moe.intermediate_size": 4096}),
        ("qwen3-235b-a22b", {"moe.intermediate_size": 1536, "attention.num_kv_heads": 4, "tp": 8}),
        ("qwen3-next-80b-a3b", {"moe.num_experts": 512, "moe.top_k": 10, "linear_attention.num_v_heads": 32}),
        ("kimi-linear-48b-a3b", {"hidden_size": 2304, "linear_attention.num_heads": 32, "moe.intermediate_size": 1024}),
        ("llama4-maverick", {"moe.num_experts": 128, "moe.top_k": 1, "moe.intermediate_size": 8192}),
        ("llama4-scout", {"moe.num_experts": 16, "moe.num_shared_experts": 1}),
        ("gemma3-27b", {"hidden_size": 5376, "attention.sliding_window": 1024, "tp": 1}),
        ("mamba2-2.7b", {"ssm.nheads": 80, "ssm.headdim": 64, "ssm.d_state": 128, "tp": 1}),
        # the models that feed the RWKV and GLA specs (rows 23, 24, 27, 28, 29): heads x head dims per family
        ("rwkv7-1.5b-world", {"linear_attention.num_heads": 32, "linear_attention.head_k_dim": 64, "tp": 1}),
        ("rwkv6-7b-finch", {"linear_attention.num_heads": 64, "linear_attention.head_v_dim": 64, "tp": 1}),
        ("rwkv4-3b-pile", {"hidden_size": 2560, "linear_attention.kind": "rwkv4", "tp": 1}),
        ("gla-2.7b", {"linear_attention.num_heads": 5, "linear_attention.head_k_dim": 256,
                      "linear_attention.head_v_dim": 512, "mlp.intermediate_size": 6912}),
        # the two models that feed zero_experts_identity (row 45) and moe_router (row 83)
        ("longcat-flash-chat", {"moe.num_experts": 512, "moe.num_zero_experts": 256, "moe.top_k": 12,
                                "moe.intermediate_size": 2048, "hidden_size": 6144}),
        ("grok-2", {"moe.num_experts": 8, "moe.top_k": 2, "moe.intermediate_size": 16384,
                    "moe.router_logit_softcapping": 30.0, "hidden_size": 8192}),
    ],
)
def test_spot_values(name: str, expected: dict[str, Any]) -> None:
    m = load_model(name)
    assert {key: m.get(key) for key in expected} == expected


# --- malformed and invalid files -----------------------------------------------------------------------------


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ndisplay_name: Broken\ntp: [1, 2\nhidden_size: 64\n")
    with pytest.raises(ShapeError) as err:
        load_file(path)
    msg = str(err.value)
    assert str(path) in msg
    assert re.search(r"line \d+", msg), msg
    assert "malformed YAML" in msg


def test_malformed_yaml_is_reported_by_load_all(tmp_path: Path) -> None:
    write(tmp_path, "good", valid(name="good"))
    (tmp_path / "bad.yaml").write_text("name: bad\n  display_name: x\n")
    with pytest.raises(ShapeError, match=r"bad\.yaml:.*line 2"):
        load_all(tmp_path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ShapeError, match=r"list\.yaml: top level must be a mapping, got list"):
        load_file(path)


@pytest.mark.parametrize("key", ["name", "display_name", "source", "tp", "hidden_size", "regimes"])
def test_missing_required_key_names_file_and_key(tmp_path: Path, key: str) -> None:
    data = valid()
    del data[key]
    path = write(tmp_path, "toy", data)
    with pytest.raises(ShapeError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: missing key '{key}'"


@pytest.mark.parametrize("key", ["num_experts", "top_k", "intermediate_size"])
def test_missing_moe_key_names_dotted_key(tmp_path: Path, key: str) -> None:
    data = valid()
    del data["moe"][key]
    path = write(tmp_path, "toy", data)
    with pytest.raises(ShapeError, match=re.escape(f"{path}: missing key 'moe.{key}'")):
        load_file(path)


def test_get_of_absent_nested_key_names_file_and_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path, "toy", valid())
    m = load_file(path)
    with pytest.raises(ShapeError, match=re.escape(f"{path}: missing key 'mla.kv_lora_rank'")):
        m.get("mla.kv_lora_rank")
    with pytest.raises(ShapeError, match=re.escape(f"{path}: missing key 'attention.sliding_window'")):
        m.get("attention.sliding_window")
    assert m.get("attention.sliding_window", None) is None
    assert not m.has("attention.sliding_window")
    assert m.get("attention.head_dim") == 16


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d.update(tp="8"), r"key 'tp' must be int, got '8'"),
        (lambda d: d.update(tp=True), r"key 'tp' must be int, got True"),
        (lambda d: d.update(tp=2.0), r"key 'tp' must be int, got 2\.0"),
        (lambda d: d.update(hidden_size=None), r"key 'hidden_size' must be int, got None"),
        (lambda d: d.update(name=5), r"key 'name' must be str, got 5"),
        (lambda d: d.update(regimes=[1, 2]), r"key 'regimes' must be dict"),
        (lambda d: d.update(vocab_size="big"), r"key 'vocab_size' must be int"),
        (lambda d: d.update(vocab_size=0), r"key 'vocab_size' must be positive, got 0"),
        (lambda d: d["moe"].update(top_k=-1), r"key 'moe.top_k' must be positive, got -1"),
        (lambda d: d["moe"].update(num_experts="8"), r"key 'moe.num_experts' must be int"),
        (lambda d: d["attention"].update(kind=3), r"key 'attention.kind' must be str"),
        (lambda d: d["attention"].update(head_dim=False), r"key 'attention.head_dim' must be int, got False"),
        (lambda d: d.update(moe=[8, 2]), r"key 'moe' must be dict"),
        (lambda d: d["regimes"]["decode"].update(tokens=[1, "8"]), r"key 'regimes\.decode\.tokens' " + NON_EMPTY),
        (lambda d: d["regimes"]["decode"].update(tokens=[]), r"key 'regimes\.decode\.tokens' " + NON_EMPTY),
        (lambda d: d["regimes"]["decode"].update(kv_lens=[0, 8]), r"key 'regimes\.decode\.kv_lens' " + NON_EMPTY),
        (lambda d: d["regimes"]["prefill"].update(tokens=2048), r"key 'regimes\.prefill\.tokens' must be list"),
        (lambda d: d["regimes"]["quick"].update(decode_tokens=[True]), r"key 'regimes\.quick\.decode_tokens'"),
    ],
)
def test_wrong_types_are_rejected(tmp_path: Path, edit: Any, pattern: str) -> None:
    data = valid()
    edit(data)
    path = write(tmp_path, "toy", data)
    with pytest.raises(ShapeError, match=re.escape(str(path)) + ": " + pattern):
        load_file(path)


def test_unknown_model_lists_valid_names(tmp_path: Path) -> None:
    write(tmp_path, "alpha", valid(name="alpha"))
    write(tmp_path, "beta", valid(name="beta"))
    with pytest.raises(ShapeError) as err:
        load_model("nope", tmp_path)
    assert str(err.value) == "unknown model 'nope'; valid: alpha, beta"


def test_unknown_model_lists_shipped_names() -> None:
    with pytest.raises(ShapeError) as err:
        load_model("nope")
    msg = str(err.value)
    assert msg.startswith("unknown model 'nope'; valid: ")
    assert msg.removeprefix("unknown model 'nope'; valid: ").split(", ") == sorted(EXPECTED_MODELS)


def test_unknown_model_in_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match=r"unknown model 'nope'; valid: \(none\)"):
        load_model("nope", tmp_path)


def test_name_must_match_file_stem(tmp_path: Path) -> None:
    path = write(tmp_path, "toy-v2", valid(name="toy"))
    with pytest.raises(ShapeError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: key 'name' is 'toy' but the file is named 'toy-v2'"


def test_top_k_above_num_experts_is_rejected(tmp_path: Path) -> None:
    data = valid()
    data["moe"].update(num_experts=4, top_k=8)
    path = write(tmp_path, "toy", data)
    with pytest.raises(ShapeError, match=re.escape(f"{path}: key 'moe.top_k' (8) exceeds moe.num_experts")):
        load_file(path)


def test_top_k_equal_to_num_experts_is_allowed(tmp_path: Path) -> None:
    data = valid()
    data["moe"].update(num_experts=4, top_k=4)
    assert load_file(write(tmp_path, "toy", data)).get("moe.top_k") == 4


def test_intermediate_size_not_divisible_by_tp_is_rejected(tmp_path: Path) -> None:
    data = valid(tp=8)
    data["attention"]["num_q_heads"] = 16  # whole per GPU at tp 8: only the expert width is wrong
    data["moe"]["intermediate_size"] = 100  # 100 / 8 is not whole: no per-GPU expert width
    path = write(tmp_path, "toy", data)
    with pytest.raises(ShapeError, match=re.escape(f"{path}: key 'moe.intermediate_size' is not divisible by tp=8")):
        load_file(path)


def test_extra_sections_are_kept_verbatim(tmp_path: Path) -> None:
    data = valid()
    data["mla"] = {"q_lora_rank": None, "kv_lora_rank": 512}
    data["rms_norm_eps"] = 1e-6
    m = load_file(write(tmp_path, "toy", data))
    assert m.get("mla.q_lora_rank") is None
    assert m.get("mla.kv_lora_rank") == 512
    assert m.get("rms_norm_eps") == pytest.approx(1e-6)


def test_shipped_floats_parse_as_floats(model: ModelShapes) -> None:
    # PyYAML reads `1e-6` (no dot) as a string; the files write 1.0e-06.
    if model.has("rms_norm_eps"):
        assert isinstance(model.get("rms_norm_eps"), float)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        # keys no validator used to cover: `mla.kv_lora_rank: -512` planned rows with R=-512
        (lambda d: d.update(mla={"q_lora_rank": None, "kv_lora_rank": -512}), r"key 'mla\.kv_lora_rank' must be "
         r"positive, got -512"),
        (lambda d: d.update(mla={"kv_lora_rank": "512"}), r"key 'mla\.kv_lora_rank' must be int, got '512'"),
        (lambda d: d.update(ssm={"d_state": 0}), r"key 'ssm\.d_state' must be positive, got 0"),
        (lambda d: d.update(rms_norm_eps=-1e-6), r"key 'rms_norm_eps' must be positive"),
        (lambda d: d.update(rms_norm_eps="1e-6"), r"key 'rms_norm_eps' must be float"),
        (lambda d: d["moe"].update(routed_scaling_factor=-2.5), r"key 'moe\.routed_scaling_factor' must be positive"),
        (lambda d: d["moe"].update(num_shared_experts=-1), r"key 'moe\.num_shared_experts' must be >= 0, got -1"),
        # a key a new spec reads before the schema lists it is still held to > 0
        (lambda d: d.update(brand_new={"block": -4}), r"key 'brand_new\.block' must be positive, got -4"),
        (lambda d: d.update(tp=-2), r"key 'tp' must be positive, got -2"),
        # divisibility where the kernels shard or group
        (lambda d: d["attention"].update(num_q_heads=5, num_kv_heads=1), r"key 'attention\.num_q_heads' \(5\) is not "
         r"divisible by tp \(2\): query heads"),
        (lambda d: d["attention"].update(num_q_heads=8, num_kv_heads=3), r"key 'attention\.num_q_heads' \(8\) is not "
         r"divisible by attention\.num_kv_heads \(3\): GQA"),
        (lambda d: d.update(ssm={"nheads": 80, "ngroups": 3}), r"key 'ssm\.nheads' \(80\) is not divisible by "
         r"ssm\.ngroups \(3\)"),
    ],
)
def test_every_key_a_spec_reads_is_validated(tmp_path: Path, edit: Any, pattern: str) -> None:
    data = valid()
    edit(data)
    path = write(tmp_path, "toy", data)
    with pytest.raises(ShapeError, match=re.escape(str(path)) + ": " + pattern):
        load_file(path)


def test_zero_counts_that_mean_none_are_allowed(tmp_path: Path) -> None:
    data = valid()
    data["moe"].update(num_shared_experts=0, first_k_dense_replace=0, num_zero_experts=0)
    assert load_file(write(tmp_path, "toy", data)).get("moe.num_shared_experts") == 0


def test_the_schema_covers_every_key_the_specs_read() -> None:
    """Every `model.get("...")` / `model.has("...")` key in harness/specs is typed in the schema."""
    from harness import shapes

    root = Path(shapes.__file__).parent / "specs"
    read = set()
    for f in root.rglob("*.py"):
        read |= set(re.findall(r"""\.(?:get|has)\(\s*["']([a-z_]+(?:\.[a-z_]+)+|[a-z_]+)["']""", f.read_text()))
    sections = {k.split(".")[0] for k in shapes._OPTIONAL} | set(shapes._REQUIRED)
    model_keys = {k for k in read if k.split(".")[0] in sections}
    missing = sorted(k for k in model_keys if k not in shapes._OPTIONAL and k not in shapes._REQUIRED)
    assert missing == [], missing
