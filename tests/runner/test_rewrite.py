"""The gate's in-place input rewrite: all or nothing, and an upstream adapter's untimed relayout re-applied."""

from __future__ import annotations

import torch

from harness.spec import Case, Impl, Prepared
from harness.worker import rewrite_inputs, run_row
from tests.runner.fakes import SPEC, FakeScaleSpec

CPU = torch.device("cpu")
TASK = {"seed": 0, "target_s": 0.01, "use_graph": False, "check_only": True}
CASE = Case("test", "test", {"n": 64})


class Translated(Impl):
    """Works on a translated copy of x (as an adapter whose upstream takes another layout), refreshed untimed."""

    kernel = "fake_scale"
    provider = "translated"

    def __init__(self, refresh: bool) -> None:
        self.refresh = refresh

    def available(self) -> str | None:
        return None

    def prepare(self, inputs, out, case, dtype):
        x2 = inputs["x"] * 2  # "layout translation" done in prepare

        def fn() -> None:
            out.copy_(x2)

        relayout = (lambda: torch.mul(inputs["x"], 2, out=x2)) if self.refresh else None
        return Prepared(fn, relayout=relayout)


def test_translation_without_relayout_fails_with_relayout_passes() -> None:
    row, _ = run_row(SPEC, Translated(refresh=False), CASE, "fp32", TASK, CPU)
    assert row["status"] == "incorrect" and "inputs rewritten after prepare" in row["error"]
    row, _ = run_row(SPEC, Translated(refresh=True), CASE, "fp32", TASK, CPU)
    assert row["status"] == "ok", row


class Ragged(FakeScaleSpec):
    """Shapes drawn from the seed (as ragged attention batches are)."""

    def make_inputs(self, case, dtype, device, seed):
        n = 8 + seed % 5
        g = torch.Generator(device=device).manual_seed(seed)
        return {"x": torch.randn(n, generator=g, device=device), "y": torch.randn(4, generator=g, device=device)}


def test_rewrite_is_all_or_nothing() -> None:
    spec = Ragged()
    inputs = spec.make_inputs(CASE, "fp32", CPU, seed=0)
    before = {k: v.clone() for k, v in inputs.items()}
    skipped = rewrite_inputs(spec, inputs, CASE, "fp32", CPU, seed=1)  # x gets another length: nothing changes
    assert skipped == ["x", "y"]
    assert all(torch.equal(before[k], inputs[k]) for k in inputs)
    assert rewrite_inputs(spec, inputs, CASE, "fp32", CPU, seed=5) == []  # same length: both rewritten
    assert not torch.equal(before["y"], inputs["y"])
