"""report.html in a real browser: headless Chromium renders it with no console errors and a non-blank page.

Needs a Chromium binary (Debian/Ubuntu: `apt-get install -y chromium`); skipped with that reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from harness import report
from tests.report.test_report import hand_run

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HELION_RED = np.array([0xD6, 0x27, 0x28]) / 255.0  # plots.impl_color("helion"): only the embedded PNGs use it


def _chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    return next((p for c in CANDIDATES if (p := shutil.which(c))), None)


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (install: apt-get install -y "
                                "chromium, or set CHROMIUM=/path/to/chrome)")


def _run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console_problems(stderr: str) -> list[str]:
    # the page has no scripts: any console message (a JS error, a blocked or failed load) is a defect
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    files = report.build_report(hand_run(tmp_path / "run"))
    url = files.html.resolve().as_uri()

    shot = tmp_path / "shot.png"
    res = _run(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,4000", url)
    assert shot.exists(), f"no screenshot (exit {res.returncode}):\n{res.stderr[-3000:]}"
    assert not _console_problems(res.stderr), _console_problems(res.stderr)
    img = matplotlib.image.imread(shot)[:, :, :3]
    assert img.shape[:2] == (4000, 1280)
    colors = np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colors) > 50, f"page looks blank: {len(colors)} distinct colours"
    # a plot file next to the page was loaded and painted, not just the tables
    near_red = np.abs(img - HELION_RED).max(axis=-1) < 0.05
    assert near_red.sum() > 200, "no Helion-red plot pixels in the screenshot: the plot PNGs did not render"

    res = _run(tmp_path / "profile-dom", "--dump-dom", url)
    assert res.returncode == 0, res.stderr[-3000:]
    dom = res.stdout
    assert not _console_problems(res.stderr), _console_problems(res.stderr)
    for text in ("Headline: geomean speedup of Helion", "4.00× (n=2)", "Rows that are not ok", "Environment",
                 "NVIDIA H100 80GB HBM3"):
        assert text in dom
    assert dom.count('src="plots/') == len(files.plots)


def test_a_group_with_no_time_is_one_line_of_counts():
    """A correctness-only group (check runs: no median, no eager time) renders its row counts by provider and status
    instead of a table of empty time cells; one timed row keeps the table."""
    from harness.report import Group, Point, untimed_line

    def point(m: int, **helion: object) -> Point:
        rows = {"helion": {"impl": "helion", "status": "ok", "median_us": None, "eager_us": None, **helion},
                "vllm": {"impl": "vllm", "status": "unavailable", "median_us": None, "eager_us": None}}
        return Point(shape=f'{{"M":{m}}}', dtype="bf16", regime="decode", params={"M": m}, rows=rows)

    g = Group(kernel="k", model="m", category="c", impls=["helion", "vllm"], points=[point(1), point(8)],
              labels=["M=1", "M=8"], fixed={})
    assert untimed_line(g) == "2 shapes, none timed: helion ok 2, vllm unavailable 2"
    g.points.append(point(32, median_us=3.0))
    assert untimed_line(g) is None
