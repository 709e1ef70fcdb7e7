"""Expected row costs for --max-s / --gpus / --shard: per kernel from the newest committed run that measured it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli


def _run(root: Path, name: str, costs: dict[str, float] | None) -> str:
    d = root / "results" / "h200" / name
    d.mkdir(parents=True)
    (d / "metadata.json").write_text(json.dumps({"row_cost_s": costs} if costs is not None else {}))
    return f"results/h200/{name}/metadata.json"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    return [_run(tmp_path, "20261201T000000Z-all", {"a": 1.0, "b": 2.0, "c": 3.0}),
            _run(tmp_path, "20261202T000000Z-moe", {"b": 5.0}),
            _run(tmp_path, "20261203T000000Z-check", None),  # no costs recorded
            _run(tmp_path, "20261204T000000Z-x", {"c": 7.0})]


def test_each_kernel_takes_the_newest_run_that_measured_it(tree: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_git", lambda *cmd: "\n".join(tree) if cmd[0] == "ls-files" else ".git")
    costs, source = cli.committed_row_costs("h200")
    assert costs == {"a": 1.0, "b": 5.0, "c": 7.0}
    assert source == "3 runs, newest results/h200/20261204T000000Z-x"


def test_only_committed_runs_count_in_a_checkout(tree: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # the newest run is not committed: a shard node that wrote it must not plan with it
    monkeypatch.setattr(cli, "_git", lambda *cmd: "\n".join(tree[:3]) if cmd[0] == "ls-files" else ".git")
    costs, source = cli.committed_row_costs("h200")
    assert costs == {"a": 1.0, "b": 5.0, "c": 3.0} and source == "2 runs, newest results/h200/20261202T000000Z-moe"


def test_a_tree_without_git_reads_the_run_folders_present(tree: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_git", lambda *cmd: "")
    costs, _source = cli.committed_row_costs("h200")
    assert costs == {"a": 1.0, "b": 5.0, "c": 7.0}
    assert cli.committed_row_costs("h100") == ({}, None)
