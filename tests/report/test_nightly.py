"""scripts/nightly.sh end to end with a stand-in `make bench` (writes a fixture run, prints RUN_DIR=)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("bash") is None,
                                reason="needs make and bash")

FAKE_BENCH = """\
import os, sys
from pathlib import Path
from tests.report.runs import standard_rows, write_run
rows = standard_rows()
factor = float(os.environ.get("FAKE_SLOWDOWN", "1"))
for r in rows:
    if r["kernel"] == "fused_moe" and r["impl"] == "helion":
        r["mean_us"] *= factor
run = write_run(Path("results/h100") / sys.argv[1], rows, seed=int(sys.argv[2]))
print("bench chatter")
print(f"RUN_DIR={run}")
"""

MAKEFILE = """\
bench:
\t$(PY) fake_bench.py $(RUN_ID) $(SEED)
"""


def _nightly(repo: Path, run_id: str, seed: int, slowdown: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HARNESS_PYTHON=sys.executable, PY=sys.executable,
               RUN_ID=run_id, SEED=str(seed), FAKE_SLOWDOWN=str(slowdown), GITHUB_OUTPUT=str(repo / "gh_output"))
    return subprocess.run(["bash", "scripts/nightly.sh"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_nightly_compares_against_baseline(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "nightly.sh", repo / "scripts" / "nightly.sh")
    (repo / "Makefile").write_text(MAKEFILE)
    (repo / "fake_bench.py").write_text(FAKE_BENCH)

    # no BASELINE yet: report only, exit 0
    res = _nightly(repo, "20261124T031700Z-all", seed=1, slowdown=1.0)
    first = repo / "results" / "h100" / "20261124T031700Z-all"
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (first / "report.html").exists() and not (first / "compare.txt").exists()
    assert f"run_dir=results/h100/{first.name}" in (repo / "gh_output").read_text()

    # promote it, then a run with a planted 30 % slowdown fails with the regression in compare.txt and the report
    (repo / "results" / "h100" / "BASELINE").write_text(first.name + "\n")
    res = _nightly(repo, "20261125T031700Z-all", seed=2, slowdown=1.3)
    second = repo / "results" / "h100" / "20261125T031700Z-all"
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    assert "SLOWER" in (second / "compare.txt").read_text()
    assert "Regressions vs 20261124T031700Z-all" in (second / "report.html").read_text()
    assert "regression against the baseline" in res.stderr



def test_nightly_refuses_a_baseline_from_another_gpu(tmp_path: Path) -> None:
    """results/<this gpu>/BASELINE naming a run that was measured on another GPU: compare exits 2 (its timings do
    not compare) and the nightly fails with it instead of passing with a warning."""
    import json

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "nightly.sh", repo / "scripts" / "nightly.sh")
    (repo / "Makefile").write_text(MAKEFILE)
    (repo / "fake_bench.py").write_text(FAKE_BENCH)
    assert _nightly(repo, "20261124T031700Z-all", seed=1, slowdown=1.0).returncode == 0
    first = repo / "results" / "h100" / "20261124T031700Z-all"
    meta = json.loads((first / "metadata.json").read_text())
    meta["gpu"] = "NVIDIA H200"  # e.g. copied in from another machine's results
    (first / "metadata.json").write_text(json.dumps(meta))
    (repo / "results" / "h100" / "BASELINE").write_text(first.name + "\n")
    res = _nightly(repo, "20261125T031700Z-all", seed=2, slowdown=1.0)
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]
    assert "--allow-env-mismatch" in res.stderr
