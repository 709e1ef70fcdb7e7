"""Helion ports run on CPU in Helion's eager interpret mode (HELION_INTERPRET=1) for these tests.

Helion reads HELION_INTERPRET when a kernel is decorated (module import), so the fixture both sets the
variable (the port's `available()` and launcher read it) and switches the already-imported kernels' settings,
then restores both, so test folders collected later see the environment they started with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def helion_interpret() -> Iterator[None]:
    from helion.runtime.ref_mode import RefMode

    from ports.moe import fused_moe

    old_env = os.environ.get("HELION_INTERPRET")
    os.environ["HELION_INTERPRET"] = "1"
    saved = {}
    for name, kern in fused_moe.KERNELS.items():
        saved[name] = kern.settings.ref_mode
        if kern.settings.ref_mode != RefMode.EAGER:
            kern.settings.ref_mode = RefMode.EAGER
            kern.reset()  # drop bound kernels made in the other mode
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop("HELION_INTERPRET", None)
        else:
            os.environ["HELION_INTERPRET"] = old_env
        for name, kern in fused_moe.KERNELS.items():
            if kern.settings.ref_mode != saved[name]:
                kern.settings.ref_mode = saved[name]
                kern.reset()
