"""`make_run`: a factory that writes fixture runs under tmp_path/results/h100/<name>."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.report.runs import standard_rows, write_run

RunFactory = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    def make(name: str, specs: Sequence[dict[str, Any]] | None = None, seed: int = 0, **kw: Any) -> Path:
        return write_run(tmp_path / "results" / "h100" / name, standard_rows() if specs is None else specs, seed,
                         **kw)

    return make
