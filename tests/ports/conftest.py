"""Helion ports run on CPU in Helion's eager interpret mode (HELION_INTERPRET=1) for these tests.

Helion reads HELION_INTERPRET when a kernel is decorated (module import), so the fixture both sets the
variable (the kit's `available()` and launcher read it) and switches the already-imported kernels of every port
to eager mode, then restores both, so test folders collected later see the environment they started with.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

import pytest


def port_modules() -> list[str]:
    """Every Helion port module, found by file name (ports/<category>/<kernel>.py of a spec)."""
    from harness import registry

    return sorted(m for s in registry.specs().values() if (m := registry.port_module(s)))


@pytest.fixture(scope="module", autouse=True)
def helion_interpret() -> Iterator[None]:
    from helion.runtime.ref_mode import RefMode

    from ports._port import module_kernels

    old_env = os.environ.get("HELION_INTERPRET")
    os.environ["HELION_INTERPRET"] = "1"
    kernels = []
    for name in port_modules():
        importlib.import_module(name)
        kernels += module_kernels(name).values()
    saved = []
    for kern in kernels:
        saved.append(kern.settings.ref_mode)
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
        for kern, mode in zip(kernels, saved):
            if kern.settings.ref_mode != mode:
                kern.settings.ref_mode = mode
                kern.reset()
