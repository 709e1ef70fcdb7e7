"""Run a port test file as a script under Triton's CPU interpreter: the generated Triton code with real tiles
(partial tiles, masks, index math), which Helion's eager interpret mode never executes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_in_triton_interpreter(path: str, *args: str, timeout: float = 600) -> str:
    """Run `python path args...` with TRITON_INTERPRET=1 and without HELION_INTERPRET; fail with its output's
    tail unless it exits 0. Returns its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "HELION_INTERPRET"} | {"TRITON_INTERPRET": "1"}
    # the script imports this repo's packages (tests.ports too) before it can fix sys.path itself
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, path, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout
