"""Shared fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from harness import cli


class PlanOnly:
    """A stand-in Runner for `harness check`: records the plan, marks every row unavailable, runs nothing."""

    plans: list = []

    def __init__(self, writer, opts):
        assert opts.check_only
        self.writer, self.versions = writer, {}

    def run(self, rows):
        type(self).plans = list(rows)
        for r in rows:
            self.writer.add({**r.base_row(), "status": "unavailable", "error": "unavailable: planted"})
        return {"unavailable": len(rows)}


@pytest.fixture
def plan_only(monkeypatch):
    """`harness check` plans, writes its run folder and records the plan in `PlanOnly.plans`, without a GPU."""
    monkeypatch.setattr(cli, "environment", lambda device: {"gpu": "cpu", "gpu_slug": "cpu", "git_commit": None})
    monkeypatch.setattr("harness.runner.Runner", PlanOnly)
    PlanOnly.plans = []
    return PlanOnly
