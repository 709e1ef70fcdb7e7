"""Run metadata names the commit that ran, even on a copied tree whose own .git is stale."""

from __future__ import annotations

import pytest

from harness import cli


def test_commit_from_environment_wins_over_the_checkout(monkeypatch):
    sha = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("HELION_BENCH_GIT_COMMIT", sha)
    monkeypatch.setattr(cli, "_git", lambda *a: "f" * 40)  # a stale .git on the device says something else
    assert cli._commit() == sha


def test_short_or_malformed_commit_is_refused(monkeypatch):
    monkeypatch.setenv("HELION_BENCH_GIT_COMMIT", "20a9e50")
    with pytest.raises(cli.UsageError, match="full 40-hex"):
        cli._commit()


def test_checkout_head_without_environment(monkeypatch):
    monkeypatch.delenv("HELION_BENCH_GIT_COMMIT", raising=False)
    monkeypatch.setattr(cli, "_git", lambda *a: "a" * 40)
    assert cli._commit() == "a" * 40


def test_bench_metadata_records_token_dims_and_the_plan(monkeypatch, tmp_path):
    """A bench run records each kernel's token dim (the report's latency axis) and its planned row count first,
    and its completion mark last."""
    import json

    from harness.results import read_run

    monkeypatch.setattr(cli, "environment", lambda device: {"gpu": "cpu", "gpu_slug": "cpu", "git_commit": None})

    class FakeRunner:
        def __init__(self, writer, opts):
            self.writer, self.versions = writer, {}
            meta = json.loads((writer.run_dir / "metadata.json").read_text())
            assert meta["planned_rows"] == 2 and "complete" not in meta  # the plan is on disk before any row

        def run(self, rows):
            for r in rows:
                self.writer.add({**r.base_row(), "status": "unavailable", "error": "unavailable: planted"})
            return {"unavailable": len(rows)}

    monkeypatch.setattr("harness.runner.Runner", FakeRunner)
    assert cli.main(["bench", "--device", "cpu", "--kernel", "fused_moe", "--model", "qwen3-235b-a22b",
                     "--impl", "vllm", "--dtype", "bf16", "--tokens", "1,8", "--out", str(tmp_path),
                     "--no-report"]) == 0
    (run,) = tmp_path.iterdir()
    rows, _samples, meta = read_run(run)
    assert meta["token_dims"] == {"fused_moe": "M"} and meta["complete"] == {"rows": 2} and len(rows) == 2
