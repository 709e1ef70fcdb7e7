"""The contract: one `KernelSpec` per catalog kernel, any number of `Impl`s (upstream adapters, Helion ports).

The runner only ever talks to these two interfaces; it never special-cases a kernel.

* A spec owns the math: it derives cases (named dims) from a model's shape YAML, builds fresh random inputs
  in each input's valid domain, allocates the output buffer every impl writes, computes a reference in
  higher precision, and states tolerances and FLOP/byte counts.
* An impl owns the call: `available()` says why it cannot run (or None), `prepare()` does all untimed
  set-up (imports, layout translation, config lookup, routing metadata) and returns a zero-argument
  callable that writes the spec's output buffer.  Input set-up is therefore never timed.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import torch

from harness.shapes import ModelShapes

Inputs = dict[str, Any]


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """fp32 matmuls without TF32 while references compute (restored after, also on error)."""
    prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev


@dataclasses.dataclass(frozen=True)
class Case:
    """One kernel shape: the named dims a spec derived from a model (or wrote itself for tests)."""

    model: str
    regime: str  # "decode" | "prefill" | "test"
    params: Mapping[str, Any]

    def shape_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True, separators=(",", ":"))

    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.params.items())


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Pass iff no NaN/Inf and ||out - ref|| / ||ref|| <= rel; `source` says where the bound comes from."""

    rel: float
    source: str


@dataclasses.dataclass
class Prepared:
    """What an impl's `prepare` returns.

    fn      -- zero-argument callable; each call must (re)write every element of the spec's output buffer.
    info    -- facts recorded in the result row: the tile config the kernel runs with (`config`), where it
               came from (`config_source`, e.g. the upstream's tuned JSON for this GPU or `default`), and
               free-form `notes`.
    """

    fn: Callable[[], object]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


class KernelSpec(abc.ABC):
    """The contract of one catalog kernel."""

    id: ClassVar[str]
    category: ClassVar[str]
    catalog_rows: ClassVar[tuple[int, ...]]
    title: ClassVar[str]
    dtypes: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        """Kernel shapes for `model` (empty when the model does not use this kernel)."""

    def test_cases(self) -> list[Case]:
        """Small, odd-sized cases for CPU tests (Helion interpret mode, reference checks)."""
        return []

    def invalid_reason(self, case: Case, dtype: str) -> str | None:
        """Why `case` is not a valid shape for `dtype` (e.g. a quantization block that does not divide a dim);
        such rows are reported `unavailable` with the reason instead of being run."""
        return None

    def check_cases(self) -> list[Case]:
        """The small shape(s) of `harness check` on a GPU; by default the first test case."""
        return self.test_cases()[:1]

    @abc.abstractmethod
    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        """Fresh random inputs in their valid domain (never zeros)."""

    @abc.abstractmethod
    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """The buffer every impl writes.  The checker poisons it with NaN before each checked call."""

    @abc.abstractmethod
    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """The expected output, computed in higher precision (fp32 or fp64)."""

    @abc.abstractmethod
    def tolerance(self, dtype: str) -> Tolerance: ...

    @abc.abstractmethod
    def flops(self, case: Case) -> float:
        """Useful floating-point operations of one call."""

    @abc.abstractmethod
    def bytes(self, case: Case, dtype: str) -> float:
        """Fewest bytes one call must move through device memory (each input read once, output written once)."""

    def input_sets(self, case: Case, dtype: str) -> int:
        """How many input sets to rotate through when timing (1 = rely on the L2 flush alone)."""
        return 1


class Impl(abc.ABC):
    """One implementation of a spec: an upstream adapter (`vllm`, `sglang`, ...) or a port (`helion`)."""

    kernel: ClassVar[str]
    provider: ClassVar[str]
    #: dtypes this impl supports; others give an `unavailable` row with `dtype_reason`.
    dtypes: ClassVar[tuple[str, ...] | None] = None

    def dtype_reason(self, dtype: str) -> str | None:
        if self.dtypes is not None and dtype not in self.dtypes:
            return f"{self.provider} {self.kernel} has no {dtype} path"
        return None

    def case_reason(self, case: Case, dtype: str) -> str | None:
        """Why this impl cannot run `case` although the spec allows it (an upstream limit, e.g. a kernel that
        needs >= 16 query heads per KV head); the row is `unavailable` with the reason.  Checked before any
        input is built, so it must only read `case.params`."""
        return None

    @abc.abstractmethod
    def available(self) -> str | None:
        """None when runnable here, else a one-line reason (missing package, wrong version, no GPU...)."""

    def versions(self) -> dict[str, str]:
        """Versions of what this impl loads (e.g. {"vllm": "0.33.0"}); recorded in the run metadata."""
        return {}

    @abc.abstractmethod
    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        """Untimed set-up; returns the callable that writes `out`."""
