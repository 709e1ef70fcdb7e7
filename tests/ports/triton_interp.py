"""Run a port test file as a script in a fresh process: under Triton's CPU interpreter (the generated Triton code
with real tiles: partial tiles, masks, index math, which Helion's eager interpret mode never executes), or
compiled for a real GPU target (sm_90 cubins) with both interpret modes off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_as_script(*argv: str, triton_interpret: bool = False, timeout: float = 600) -> str:
    """Run `python argv...` (a script path and its arguments, or `-c code`) without HELION_INTERPRET (and with
    TRITON_INTERPRET=1 only if asked); fail with its output's tail unless it exits 0. Returns its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("HELION_INTERPRET", "TRITON_INTERPRET")}
    if triton_interpret:
        env["TRITON_INTERPRET"] = "1"
    # the script imports this repo's packages (tests.ports too) before it can fix sys.path itself
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def run_in_triton_interpreter(*argv: str, timeout: float = 600) -> str:
    """`run_as_script` under Triton's CPU interpreter."""
    return run_as_script(*argv, triton_interpret=True, timeout=timeout)


def patch_loop_bounds() -> None:
    """In the subprocess, before running generated code: a loop bound loaded from memory or reduced from a block
    is a 1-element array in Triton's CPU interpreter, which numpy 2 refuses to turn into a `range` bound; give
    the interpreter's tensors an `__index__`."""
    import triton.runtime.interpreter as interp

    patch_tensor = interp._patch_lang_tensor

    def patch(tensor, scope):  # the interpreter's own hook signature
        patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = patch
