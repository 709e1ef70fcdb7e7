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
