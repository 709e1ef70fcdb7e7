"""The pinned files agree with each other: no silent drift between the lock and what `make bench` installs."""

from __future__ import annotations

from pathlib import Path

from upstream_adapters._loader import read_lock

ROOT = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_upstream_runtime_requirements_match_the_lock():
    lock = read_lock()
    wheels = {w.name.lower(): w.version for w in lock.wheels if w.name not in ("helion", "filecheck")}
    assert _pins(ROOT / "requirements" / "upstream-runtime.txt") == wheels


def test_helion_and_triton_pins_agree():
    bench = _pins(ROOT / "requirements" / "bench.txt")
    test = _pins(ROOT / "requirements" / "test.txt")
    assert bench["helion"] == test["helion"] == "1.5.0"  # 1.5.1 fails to import on torch 2.11
    assert bench["triton"] == test["triton"] == "3.6.0"
    assert test["torch"] == "2.13.0"  # the CPU wheel on the dev/CI machines
