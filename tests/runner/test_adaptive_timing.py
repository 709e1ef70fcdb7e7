"""Adaptive repetitions (timing.should_stop / collect_adaptive) on synthetic sample streams: no GPU needed."""

from __future__ import annotations

import numpy as np
import pytest

from harness.timing import collect_adaptive, median_ci, should_stop


class FakeTimer:
    """Stands in for the device: each batch returns k samples around 100 us with relative spread `sd`."""

    def __init__(self, sd: float, seed: int = 0) -> None:
        self.sd = sd
        self.rng = np.random.default_rng(seed)
        self.batches: list[int] = []

    def __call__(self, k: int) -> list[float]:
        self.batches.append(k)
        return list(100.0 * (1.0 + self.sd * self.rng.standard_normal(k)))


def test_stable_stream_stops_at_the_floor():
    timer = FakeTimer(sd=0.002)
    samples = collect_adaptive(timer, min_reps=20, max_reps=500)
    assert len(samples) == 20 and timer.batches == [20]


def test_noisy_stream_runs_to_the_cap():
    timer = FakeTimer(sd=0.5)
    samples = collect_adaptive(timer, min_reps=20, max_reps=300)
    assert len(samples) == 300
    assert sum(timer.batches) == 300 and timer.batches[0] == 20 and max(timer.batches) <= 30


def test_moderate_noise_stops_between_floor_and_cap_with_the_median_pinned():
    samples = collect_adaptive(FakeTimer(sd=0.05, seed=3), min_reps=20, max_reps=500)
    assert 20 < len(samples) < 500
    lo, hi = median_ci(samples)
    med = float(np.median(samples))
    assert med - lo <= 0.01 * med and hi - med <= 0.01 * med


def test_rule_floor_cap_and_fixed_count():
    stable = [100.0] * 50
    assert not should_stop(stable[:9], min_reps=10, max_reps=500)  # never below the floor
    assert should_stop(stable[:10], min_reps=10, max_reps=500)
    noisy = list(np.random.default_rng(0).exponential(100.0, 40))
    assert not should_stop(noisy, min_reps=10, max_reps=500)
    assert should_stop(noisy, min_reps=10, max_reps=40)  # the cap always stops
    assert not should_stop(stable, min_reps=10, max_reps=500, rel_ci=None)  # None: the full count
    assert len(collect_adaptive(FakeTimer(0.0), min_reps=10, max_reps=60, rel_ci=None)) == 60


def test_bootstrap_interval_is_deterministic_and_brackets_the_median():
    x = list(np.random.default_rng(1).normal(50.0, 1.0, 101))
    assert median_ci(x) == median_ci(x)
    lo, hi = median_ci(x)
    assert lo <= float(np.median(x)) <= hi


@pytest.mark.parametrize("cap", [1, 5])
def test_cap_below_the_floor_gives_the_cap(cap):
    # time_device passes min(min_reps, budget) as the floor when the target_s budget is small
    assert len(collect_adaptive(FakeTimer(0.5), min_reps=min(20, cap), max_reps=cap)) == cap
