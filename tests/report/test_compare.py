"""`harness compare`: the classification of each row, the exit status and the environment warning."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from harness import compare
from tests.report.conftest import RunFactory
from tests.report.runs import METADATA, standard_rows


def _slowed(factor: float, kernel: str = "fused_moe", impl: str = "helion") -> list[dict]:
    rows = standard_rows()
    for r in rows:
        if r["kernel"] == kernel and r["impl"] == impl:
            r["mean_us"] *= factor
    return rows


def test_planted_slowdown_is_slower_and_fails(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_run("base", seed=1)
    new = make_run("new", _slowed(1.3), seed=2)
    res = compare.compare_runs(base, new)
    slowed = {r.key for r in res.rows if r.field("kernel") == "fused_moe" and r.field("impl") == "helion"}
    assert slowed and all(res.by_key()[k].cls == compare.SLOWER for k in slowed)
    for r in res.rows:
        if r.key in slowed:
            assert r.method == "samples" and r.ci_low > 1.05 and r.p_value < 0.01
            assert r.ratio == pytest.approx(1.3, rel=0.03)
        else:
            assert r.cls in (compare.SAME, compare.NOISY), r
    assert res.exit_code == 1
    # largest slowdowns first
    assert [r.cls for r in res.rows[: len(slowed)]] == [compare.SLOWER] * len(slowed)

    assert compare.main([str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "SLOWER" in out and "result: FAIL (exit 1)" in out and "WARNING" not in out


def test_planted_speedup_is_faster_and_passes(make_run: RunFactory) -> None:
    res = compare.compare_runs(make_run("base", seed=1), make_run("new", _slowed(0.7, "rms_norm", "vllm"), seed=2))
    faster = [r for r in res.rows if r.cls == compare.FASTER]
    assert faster and {(r.field("kernel"), r.field("impl")) for r in faster} == {("rms_norm", "vllm")}
    assert res.exit_code == 0


def test_pure_noise_is_same_or_noisy(make_run: RunFactory) -> None:
    res = compare.compare_runs(make_run("base", seed=1), make_run("new", seed=7))
    assert {r.cls for r in res.rows} <= {compare.SAME, compare.NOISY}
    assert res.exit_code == 0
    assert not res.warnings


def test_wide_spread_is_noisy_not_slower(make_run: RunFactory) -> None:
    # 8 % slower on average but with 25 % spread and few samples: the CI cannot exclude the band
    base = make_run("base", seed=1, n_samples=8, spread=0.25)
    new = make_run("new", _slowed(1.08), seed=2, n_samples=8, spread=0.25)
    res = compare.compare_runs(base, new)
    assert compare.SLOWER not in {r.cls for r in res.rows}
    assert compare.NOISY in {r.cls for r in res.rows}
    assert res.exit_code == 0


def test_newly_incorrect_row_fails(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    rows = standard_rows()
    victim = next(r for r in rows if r["kernel"] == "rms_norm" and r["impl"] == "helion")
    victim.update(status="incorrect", error="rel_err 0.31 > tol 0.02")
    timeout = next(r for r in rows if r["kernel"] == "fused_moe" and r["impl"] == "sglang")
    timeout.update(status="timeout", error="timeout: no result after 180 s")
    base, new = make_run("base", seed=1), make_run("new", rows, seed=2)
    res = compare.compare_runs(base, new)
    now_bad = [r for r in res.rows if r.cls == compare.NOW_INCORRECT]
    assert {(r.field("impl"), r.new_status) for r in now_bad} == {("helion", "incorrect"), ("sglang", "timeout")}
    assert any("rel_err 0.31" in r.note for r in now_bad)
    assert res.rows[0].cls == compare.NOW_INCORRECT  # regressions lead the table
    assert res.exit_code == 1
    assert compare.main([str(base), str(new)]) == 1
    assert "NOW-INCORRECT" in capsys.readouterr().out

    # and back: the fix is reported, not failed
    back = compare.compare_runs(new, base)
    assert {r.cls for r in back.rows if r.base_status != "ok"} == {compare.NOW_OK}
    assert back.exit_code == 0


def test_still_failing_row_does_not_fail(make_run: RunFactory) -> None:
    rows = standard_rows()
    rows[0].update(status="unavailable", error="unavailable: vllm._C missing")
    res = compare.compare_runs(make_run("base", rows, seed=1), make_run("new", rows, seed=2))
    assert [r.cls for r in res.rows if r.key[1] == rows[0]["impl"] and r.base_status != "ok"] == [
        compare.STILL_NOT_OK]
    assert res.exit_code == 0


def test_metadata_mismatch_warns(make_run: RunFactory, capsys: pytest.CaptureFixture[str]) -> None:
    meta = copy.deepcopy(METADATA)
    meta["triton"] = "3.7.0"
    meta["upstreams"]["vllm"] = "0.34.0"
    del meta["driver"]
    base, new = make_run("base", seed=1), make_run("new", seed=2, metadata=meta)
    res = compare.compare_runs(base, new)
    assert len(res.warnings) == 1
    text = res.warnings[0]
    assert "triton: 3.6.0 -> 3.7.0" in text and "upstreams.vllm: 0.33.0 -> 0.34.0" in text
    assert "driver: 580.65.06 -> <missing>" in text and "torch" not in text
    assert compare.main([str(base), str(new)]) == 0  # still compared
    out = capsys.readouterr().out
    assert out.startswith("!!!") and "WARNING" in out and "triton" in out and "SAME" in out


def test_new_and_gone_rows(make_run: RunFactory) -> None:
    base_rows = standard_rows()
    new_rows = standard_rows()
    gone = new_rows.pop()
    added = dict(new_rows[0], kernel="silu_and_mul", category="activation")
    new_rows.append(added)
    res = compare.compare_runs(make_run("base", base_rows, seed=1), make_run("new", new_rows, seed=2))
    gone_rows = [r for r in res.rows if r.cls == compare.GONE]
    new_only = [r for r in res.rows if r.cls == compare.NEW]
    assert [(r.field("kernel"), r.field("impl"), r.base_status, r.new_status) for r in gone_rows] == [
        (gone["kernel"], gone["impl"], "ok", None)]
    assert [(r.field("kernel"), r.base_status, r.new_status) for r in new_only] == [("silu_and_mul", None, "ok")]
    assert res.exit_code == 0


def test_no_samples_falls_back_to_p20_p80(make_run: RunFactory) -> None:
    base = make_run("base", seed=1, with_samples=False)
    new = make_run("new", _slowed(1.3), seed=2, with_samples=False)
    res = compare.compare_runs(base, new)
    assert all(r.method == "p20-p80" and "no samples" in r.note for r in res.rows)
    slower = {(r.field("kernel"), r.field("impl")) for r in res.rows if r.cls == compare.SLOWER}
    assert slower == {("fused_moe", "helion")}
    assert {r.cls for r in res.rows if r.cls != compare.SLOWER} <= {compare.SAME, compare.NOISY}
    assert res.exit_code == 1


def test_deterministic(make_run: RunFactory) -> None:
    base, new = make_run("base", seed=1), make_run("new", _slowed(1.04), seed=2)
    a = compare.compare_runs(base, new)
    b = compare.compare_runs(base, new)
    assert [(r.key, r.cls, r.ci_low, r.ci_high) for r in a.rows] == [(r.key, r.cls, r.ci_low, r.ci_high)
                                                                     for r in b.rows]


def test_500_rows_take_seconds(tmp_path: Path) -> None:
    from tests.report.runs import write_run

    specs = [{"kernel": f"k{i // 25}", "category": "moe", "impl": "helion", "model": "m", "regime": "decode",
              "shape": {"M": i % 25 + 1}, "dtype": "bf16", "mean_us": 10.0 + i} for i in range(500)]
    base = write_run(tmp_path / "base", specs, seed=1, n_samples=50)
    new = write_run(tmp_path / "new", specs, seed=2, n_samples=50)
    t0 = time.perf_counter()
    res = compare.compare_runs(base, new)
    elapsed = time.perf_counter() - t0
    assert len(res.rows) == 500 and res.exit_code == 0
    assert elapsed < 30.0, f"compare of 500 rows took {elapsed:.1f} s"


def test_bad_arguments(make_run: RunFactory, tmp_path: Path) -> None:
    base = make_run("base", seed=1)
    with pytest.raises(SystemExit):
        compare.main([str(base), str(tmp_path / "nope")])
    with pytest.raises(ValueError):
        compare.compare_runs(base, base, alpha=0.0)


def test_rows_outside_the_new_runs_selection_are_not_gone(make_run: RunFactory) -> None:
    """A one-dtype run against a two-dtype baseline: the other dtype's rows were never asked for."""
    import json

    base_rows = standard_rows()
    other = [dict(r, dtype="fp8_w8a8_block128") for r in base_rows]
    new_dir = make_run("new", standard_rows(), seed=2)
    meta_path = new_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["selection"] = {"kernels": None, "models": None, "impls": None, "dtypes": [base_rows[0]["dtype"]]}
    meta_path.write_text(json.dumps(meta))
    res = compare.compare_runs(make_run("base", base_rows + other, seed=1), new_dir)
    assert not [r for r in res.rows if r.cls == compare.GONE]
    meta["selection"] = {}
    meta_path.write_text(json.dumps(meta))
    res = compare.compare_runs(make_run("base2", base_rows + other, seed=1), new_dir)
    assert len([r for r in res.rows if r.cls == compare.GONE]) == len(other)
