"""The Helion fused-MoE port on CPU: Helion eager interpret mode (conftest) vs the spec's fp32 reference.

Interpret mode runs the kernel bodies in PyTorch with bf16 tensors (hl.dot as an fp32-accumulate mm; the port
registers the CPU kernel torch lacks), honouring the fixed block_m (so routing padding and the per-block
expert lookup are exercised) but not the tunable tile sizes.  The Triton code the GPU runs is covered by the
two subprocess tests at the end (sm_90 compile; Triton CPU interpreter with real tiles).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import helion
import pytest
import torch

from harness.correctness import check_call, poison
from harness.spec import Case
from harness.specs.moe.fused_moe import FP8, SPEC
from ports import _configs
from ports._port import Plan, split_config
from ports.moe import fused_moe as fm

ROOT = Path(__file__).resolve().parent.parent.parent
CPU = torch.device("cpu")


def _case(m: int, e: int, top_k: int, k: int, n: int) -> Case:
    return Case("test", "test", {"M": m, "E": e, "top_k": top_k, "K": k, "N": n, "tp": 1})


def _check(case: Case, dtype: str, inputs: dict | None = None, configs: dict | None = None):
    inputs = inputs if inputs is not None else SPEC.make_inputs(case, dtype, CPU, seed=1)
    out = SPEC.make_output(inputs, case, dtype)
    if configs is None:
        fn = fm.IMPL.prepare(inputs, out, case, dtype).fn
    else:
        fn = fm.IMPL.build(inputs, out, case, dtype, configs)
    return check_call(fn, out, SPEC.reference(inputs, case, dtype), SPEC.tolerance(dtype)), out, fn


# ---------------------------------------------------------------------------------------------------- configs


def test_bucket_key_rounds_m_up_and_ignores_tp() -> None:
    dims = {"E": 128, "N": 192, "K": 4096, "top_k": 8, "tp": 8}
    assert _configs.bucket_key({**dims, "M": 32}, "bf16") == "dtype=bf16,E=128,N=192,K=4096,top_k=8,M<=32"
    assert _configs.bucket_key({**dims, "M": 33}, "bf16").endswith("M<=128")
    assert _configs.bucket_key({**dims, "M": 1}, FP8).startswith(f"dtype={FP8},")
    assert _configs.bucket(16384) == "<=16384"
    assert _configs.bucket(16385) == ">16384"
    with pytest.raises(ValueError):
        _configs.bucket(0)


def test_lookup_falls_back_to_default_then_round_trips(tmp_path: Path) -> None:
    dims = {"E": 6, "N": 40, "K": 96, "top_k": 2, "M": 5}
    cfgs, source = _configs.lookup("fused_moe", "h100", dims, "bf16", config_dir=tmp_path)
    assert cfgs is None
    assert source == "default (no tuned entry for dtype=bf16,E=6,N=40,K=96,top_k=2,M<=8 on h100)"
    entry = {"moe_gate_up": {"block_m": 32, "block_sizes": [64, 64], "num_warps": 4}}
    key = _configs.save("fused_moe", "h100", dims, "bf16", entry, provenance={"us": {"moe_gate_up": 1.0}},
                        config_dir=tmp_path)
    cfgs, source = _configs.lookup("fused_moe", "h100", {**dims, "M": 8}, "bf16", config_dir=tmp_path)
    assert cfgs == entry  # provenance ("_tuned") is not a config
    assert source.endswith(f"h100/fused_moe.json[{key}]")
    raw = json.loads((tmp_path / "h100" / "fused_moe.json").read_text())
    assert raw[key]["_tuned"] == {"us": {"moe_gate_up": 1.0}}
    # another bucket and another dtype stay default
    assert _configs.lookup("fused_moe", "h100", {**dims, "M": 9}, "bf16", config_dir=tmp_path)[0] is None
    assert _configs.lookup("fused_moe", "h100", dims, FP8, config_dir=tmp_path)[0] is None


def test_malformed_config_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "h100").mkdir()
    (tmp_path / "h100" / "fused_moe.json").write_text("{not json")
    with pytest.raises(ValueError, match="fused_moe.json"):
        _configs.lookup("fused_moe", "h100", {"M": 1}, "bf16", config_dir=tmp_path)


@pytest.mark.parametrize("dtype", ["bf16", FP8])
@pytest.mark.parametrize("m", _configs.M_BUCKETS)
def test_default_configs_cover_every_kernel(m: int, dtype: str) -> None:
    for top_k, n in ((8, 192), (1, 1024)):
        dims = {"E": 128, "N": n, "K": 4096, "top_k": top_k, "M": m}
        cfgs = fm.default_configs(dims, dtype)
        assert set(cfgs) == set(fm.kernel_names(dtype, top_k))
        for name, cfg in cfgs.items():
            host, config = split_config(cfg, fm.IMPL.host_keys)
            assert (host.get("block_m") in (16, 32, 64, 128)) == (name in fm.GEMM_KERNELS[dtype]), name
            for b in config["block_sizes"]:
                assert b & (b - 1) == 0, (name, b)
    assert fm.default_block_m(1, 8, 128) == 16
    assert fm.default_block_m(16384, 8, 128) == 128


# ------------------------------------------------------------------------------------------------- correctness


@pytest.mark.parametrize("case", SPEC.test_cases(), ids=lambda c: c.label())
def test_bf16_matches_reference(case: Case) -> None:
    res, out, _ = _check(case, "bf16")
    assert res.ok, res.reason
    assert torch.isfinite(out).all()


def test_expert_without_tokens_and_uneven_load() -> None:
    case = _case(5, 6, 2, 96, 40)
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=2)
    # expert 0 gets nothing, expert 5 four slots (more than one 16-row block's worth is not needed: block_m 16
    # still pads every expert to its own block)
    inputs["topk_ids"] = torch.tensor([[1, 5], [2, 5], [3, 4], [5, 1], [5, 4]], dtype=torch.int32)
    res, _, _ = _check(case, "bf16", inputs)
    assert res.ok, res.reason


@pytest.mark.parametrize("m", [1, 7])
def test_top_k_1_writes_out_directly(m: int) -> None:
    case = _case(m, 4, 1, 64, 48)
    res, _, fn = _check(case, "bf16")
    assert res.ok, res.reason
    assert isinstance(fn, Plan) and "moe_topk_sum" not in fn.configs


def test_block_m_larger_than_an_expert_and_split_block_m() -> None:
    """block_m 32 for gate-up and 16 for the down GEMM: two routings, intermediate indexed by slot."""
    case = _case(9, 5, 3, 64, 32)
    dims = fm.case_dims(case)
    cfgs = fm.default_configs(dims, "bf16")
    cfgs["moe_gate_up"]["block_m"] = 32
    cfgs["moe_down"]["block_m"] = 16
    res, _, plan = _check(case, "bf16", configs=cfgs)
    assert res.ok, res.reason
    assert "block_m=32/16" in plan.notes[0]


def test_every_call_rewrites_out() -> None:
    case = SPEC.test_cases()[0]
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=3)
    out = SPEC.make_output(inputs, case, "bf16")
    fn = fm.IMPL.prepare(inputs, out, case, "bf16").fn
    ref = SPEC.reference(inputs, case, "bf16")
    for _ in range(2):
        poison(out)
        fn()
        assert torch.isfinite(out).all()
    assert check_call(fn, out, ref, SPEC.tolerance("bf16")).ok


def test_wrong_expert_weights_fail_the_check() -> None:
    """Negative control: the same port fed the weights of the neighbouring expert must be caught."""
    case = SPEC.test_cases()[0]
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=4)
    out = SPEC.make_output(inputs, case, "bf16")
    wrong = {**inputs, "w1": inputs["w1"].roll(1, dims=0), "w2": inputs["w2"].roll(1, dims=0)}
    fn = fm.IMPL.prepare(wrong, out, case, "bf16").fn
    res = check_call(fn, out, SPEC.reference(inputs, case, "bf16"), SPEC.tolerance("bf16"))
    assert not res.ok and res.rel_err is not None and res.rel_err > 10 * res.tol


def test_skipped_step_leaves_nan_and_fails() -> None:
    """Negative control: a plan that skips the top-k sum leaves the poisoned output unwritten."""
    case = SPEC.test_cases()[0]
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=5)
    out = SPEC.make_output(inputs, case, "bf16")
    plan = fm.IMPL.prepare(inputs, out, case, "bf16").fn
    plan.steps = plan.steps[:-1]
    res = check_call(plan, out, SPEC.reference(inputs, case, "bf16"), SPEC.tolerance("bf16"))
    assert not res.ok and "NaN" in (res.reason or "")


def test_fp8_block128_matches_reference() -> None:
    # K = 256: two scale blocks along K; N = 192: a partial 128-group in the down GEMM's activation quant and
    # gate/up scale blocks that straddle the gate|up boundary (rows 128..255 hold gate 128..191 + up 0..63)
    case = _case(5, 6, 2, 256, 192)
    res, _, _ = _check(case, FP8)
    assert res.ok, res.reason


def test_fp8_wrong_weight_scale_fails() -> None:
    case = _case(5, 6, 2, 256, 192)
    inputs = SPEC.make_inputs(case, FP8, CPU, seed=6)
    out = SPEC.make_output(inputs, case, FP8)
    wrong = {**inputs, "w2_scale": inputs["w2_scale"].flip(1)}
    fn = fm.IMPL.prepare(wrong, out, case, FP8).fn
    res = check_call(fn, out, SPEC.reference(inputs, case, FP8), SPEC.tolerance(FP8))
    assert not res.ok


@pytest.mark.parametrize("shape", [(5, 6, 2, 256, 192), (7, 6, 3, 384, 128), (1, 4, 1, 256, 128)],
                         ids=lambda s: "M={},E={},top_k={},K={},N={}".format(*s))
def test_fp8_fused_quant_gate_up_matches_the_two_launch_path(shape: tuple[int, int, int, int, int]) -> None:
    """fuse_quant quantizes the gathered rows inside the gate-up with the math of per_token_group_quant_fp8, so
    both paths pass the gate and give the same output bit for bit (eager interpret mode runs the same torch ops;
    the Triton code is compared in codegen_check.py --triton-interpret)."""
    case = _case(*shape)
    inputs = SPEC.make_inputs(case, FP8, CPU, seed=11)
    outs, plans = {}, {}
    for fuse in (False, True):
        cfgs = fm.default_configs(fm.case_dims(case), FP8)
        cfgs["moe_gate_up_fp8"]["fuse_quant"] = fuse
        res, out, plans[fuse] = _check(case, FP8, inputs, cfgs)
        assert res.ok, (fuse, res.reason)
        outs[fuse] = out.clone()
    assert torch.equal(outs[True], outs[False])
    unfused = [(ln.kernel.name, ln.config_name) for ln in plans[False].launches]
    fused = [(ln.kernel.name, ln.config_name) for ln in plans[True].launches]
    assert unfused[:2] == [("per_token_group_quant_fp8",) * 2, ("moe_gate_up_fp8",) * 2]
    # one launch fewer, under the same config entry (so lookup, probe and tune keep working)
    assert fused[0] == ("moe_gate_up_fp8_fused_quant", "moe_gate_up_fp8") and fused[1:] == unfused[2:]
    assert "inside the gate-up kernel" in plans[True].notes[-1]
    assert "(2 launches)" in plans[False].notes[-1]


@pytest.mark.parametrize("dtype", ["bf16", FP8])
def test_defaults_and_host_candidates_for_fuse_quant(dtype: str) -> None:
    """The fused quant is opt-in: no default sets it; `make tune` offers it for the fp8 gate-up at decode only."""
    for m in _configs.M_BUCKETS:
        for top_k, n in ((8, 192), (1, 1024)):
            dims = {"E": 128, "N": n, "K": 4096, "top_k": top_k, "M": m}
            assert all("fuse_quant" not in cfg for cfg in fm.default_configs(dims, dtype).values()), dims
            fused = [c for name in fm.GEMM_KERNELS[dtype] for c in fm.IMPL.host_candidates(name, dims, dtype)
                     if c.get("fuse_quant")]
            bm = fm.default_block_m(m, top_k, 128)
            assert fused == ([{"block_m": bm, "fuse_quant": True}] if dtype == FP8 and bm <= 32 else []), dims
    assert "fuse_quant" in fm.IMPL.host_keys  # never passed to helion.Config


# ---------------------------------------------------------------------------------------------------- the impl


def test_prepare_info_and_impl_metadata() -> None:
    case = SPEC.test_cases()[1]
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=7)
    out = SPEC.make_output(inputs, case, "bf16")
    info = fm.IMPL.prepare(inputs, out, case, "bf16").info
    assert info["config_source"].startswith("default (no tuned entry for dtype=bf16,E=4,N=32,K=64,top_k=2,M<=1")
    assert set(info["config"]) == {"moe_gate_up", "moe_down", "moe_topk_sum"}
    json.dumps(info["config"])  # recorded in the results CSV
    assert "align_block_size" in info["notes"] and "no re-layout" in info["notes"]
    assert fm.IMPL.available() is None  # HELION_INTERPRET=1 (conftest)
    assert fm.IMPL.versions()["helion"]
    assert fm.IMPL.dtypes == ("bf16", FP8)
    assert fm.IMPL.kernel == "fused_moe" and fm.IMPL.provider == "helion"


def test_prepare_uses_a_shipped_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = SPEC.test_cases()[0]
    dims = fm.case_dims(case)
    tuned = fm.default_configs(dims, "bf16")
    tuned["moe_down"]["block_m"] = 32
    del tuned["moe_topk_sum"]  # an entry missing a kernel is completed from the defaults, and says so
    monkeypatch.setattr(_configs, "CONFIG_DIR", tmp_path)
    key = _configs.save("fused_moe", _configs.gpu_slug_here(), dims, "bf16", tuned)
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=8)
    out = SPEC.make_output(inputs, case, "bf16")
    prepared = fm.IMPL.prepare(inputs, out, case, "bf16")
    assert f"[{key}]" in prepared.info["config_source"]
    assert "+default moe_topk_sum" in prepared.info["config_source"]
    assert prepared.info["config"]["moe_down"]["block_m"] == 32
    res = check_call(prepared.fn, out, SPEC.reference(inputs, case, "bf16"), SPEC.tolerance("bf16"))
    assert res.ok, res.reason


def test_stale_shipped_entry_falls_back_to_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = SPEC.test_cases()[0]
    dims = fm.case_dims(case)
    stale = fm.default_configs(dims, "bf16")
    stale["moe_gate_up"]["block_sizes"] = [32, 32, 32]  # one block size too many for this kernel
    monkeypatch.setattr(_configs, "CONFIG_DIR", tmp_path)
    _configs.save("fused_moe", _configs.gpu_slug_here(), dims, "bf16", stale)
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=10)
    out = SPEC.make_output(inputs, case, "bf16")
    real_build = fm.IMPL.build

    def build(inputs, out, case, dtype, configs):  # Helion validates Configs only when compiling for a GPU
        if len(configs["moe_gate_up"]["block_sizes"]) != 2:
            raise helion.exc.InvalidConfig("Too many values for config['block_sizes'], expected 2, got 3")
        return real_build(inputs, out, case, dtype, configs)

    monkeypatch.setattr(fm.IMPL, "build", build)
    prepared = fm.IMPL.prepare(inputs, out, case, "bf16")
    assert prepared.info["config_source"].startswith("default (shipped entry ")
    assert "rejected: Too many values" in prepared.info["config_source"]
    assert prepared.info["config"]["moe_gate_up"]["block_sizes"] != [32, 32, 32]
    res = check_call(prepared.fn, out, SPEC.reference(inputs, case, "bf16"), SPEC.tolerance("bf16"))
    assert res.ok, res.reason


def test_shape_errors_are_named() -> None:
    case = SPEC.test_cases()[0]
    inputs = SPEC.make_inputs(case, "bf16", CPU, seed=9)
    out = SPEC.make_output(inputs, case, "bf16")
    with pytest.raises(ValueError, match="w2 must be"):
        fm.IMPL.prepare({**inputs, "w2": inputs["w2"][:, :, :-1]}, out, case, "bf16")
    with pytest.raises(ValueError, match="out must be"):
        fm.IMPL.prepare(inputs, out[:-1], case, "bf16")


# ------------------------------------------------------------------------------ generated Triton code (no GPU)


def _run_script(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HELION_INTERPRET", "TRITON_INTERPRET")}
    env.update(env_extra)
    return subprocess.run([sys.executable, str(ROOT / "tests" / "ports" / "codegen_check.py"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)


@pytest.mark.slow
def test_generated_triton_compiles_for_sm90() -> None:
    """Every kernel to an sm_90 cubin: default configs of a decode and a prefill bucket, shipped entries, and
    edge shapes (M = 1 and top_k = 1 make size-1 dims, which Helion specializes)."""
    proc = _run_script(["--sm90", "--buckets", "1", "2048"], {})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.count("ok ") >= 35, proc.stdout


@pytest.mark.slow
def test_generated_triton_runs_in_the_triton_interpreter() -> None:
    """The GPU code path with real tiles (partial N and K tiles, two block_m), on CPU."""
    proc = _run_script(["--triton-interpret"], {"TRITON_INTERPRET": "1"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_tune_dry_run_lists_buckets() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HELION_INTERPRET"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "tune.py"), "--kernel", "fused_moe",
                           "--model", "qwen3-235b-a22b", "--dtype", "bf16", "--dry-run"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "dtype=bf16,E=128,N=192,K=4096,top_k=8,M<=32" in proc.stdout
    assert "8 bucket(s)" in proc.stdout


def test_shipped_h100_entries_only_drop_default_host_descriptors() -> None:
    """codegen_check drops `host_tensor_descriptors` on CPU; that is only sound while shipped entries keep it false."""
    import json

    data = json.loads((ROOT / "ports" / "configs" / "h100" / "fused_moe.json").read_text())
    values = [cfg.get("host_tensor_descriptors") for entry in data.values() for name, cfg in entry.items()
              if not name.startswith("_")]
    assert values and all(v in (None, False) for v in values)


def test_tune_worst_first_orders_buckets_by_port_vs_best_upstream(tmp_path: Path) -> None:
    """--worst-first: the bucket where Helion trails the fastest upstream most comes first; unmeasured last."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import tune
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from harness.results import RunWriter

    def case(m: int, e: int) -> Case:
        return Case("toy", "decode", {"M": m, "E": e, "top_k": 2, "K": 64, "N": 32, "tp": 1})

    writer = RunWriter(tmp_path / "run", {"seed": 0})
    times = {8: {"helion": 10.0, "vllm": 20.0, "sglang": 30.0},  # Helion 2x faster than the best upstream
             32: {"helion": 30.0, "vllm": 20.0, "sglang": 25.0}}  # Helion 1.5x slower than the best
    for m, by_impl in times.items():
        for impl, us in by_impl.items():
            writer.add({"kernel": "fused_moe", "category": "moe", "impl": impl, "model": "toy", "regime": "decode",
                        "shape": case(m, 4).shape_json(), "dtype": "bf16", "status": "ok", "median_us": us})
    plan = [(_configs.bucket_key(fm.case_dims(c), "bf16"), "bf16", c) for c in (case(8, 4), case(32, 4), case(8, 6))]
    ordered = tune.order_worst_first(plan, tmp_path / "run", "fused_moe", fm.IMPL.case_dims)
    assert [c.params["M"] for _, _, c in ordered] == [32, 8, 8]
    assert ordered[-1][2].params["E"] == 6  # not measured in the run: last
