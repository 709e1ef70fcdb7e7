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
#: what `make_output` / `reference` return: one tensor, or named tensors when a kernel writes several outputs
#: (e.g. the normed rows and the updated residual): every one is poisoned before each checked call and compared
Outputs = torch.Tensor | dict[str, torch.Tensor]


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


#: the default local bound is this many times the global one (capped at ROW_REL_CAP): rounding spreads evenly
#: over rows, so a row far above the global ratio is a wrong row (one zeroed token row at M = 16384 adds only
#: ~1/sqrt(M) to the global ratio, but gives that row an error of 1.0)
ROW_REL_FACTOR = 4.0
ROW_REL_CAP = 0.5


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Pass iff no NaN/Inf, ||out - ref|| / ||ref|| <= rel (global), and every row's
    ||out_r - ref_r|| / max(||ref_r||, 0.1 * rms row norm) <= row_rel (local: a row is one slice of the output's
    first non-unit dim, the token axis of every spec's outputs); `source` says where the bounds come from.

    row_rel None means the default, min(ROW_REL_CAP, ROW_REL_FACTOR * rel) (0 for exact kernels); a spec whose
    legitimate error concentrates in single rows (a sampling threshold decided one ulp the other way) states its
    own, with the reason in `row_source`."""

    rel: float
    source: str
    row_rel: float | None = None
    row_source: str = ""

    @property
    def row_bound(self) -> float:
        if self.row_rel is not None:
            return self.row_rel
        return min(ROW_REL_CAP, ROW_REL_FACTOR * self.rel)

    def row_why(self) -> str:
        return self.row_source or f"default: {ROW_REL_FACTOR:g}x the global bound per row, capped at {ROW_REL_CAP:g}"


@dataclasses.dataclass
class Prepared:
    """What an impl's `prepare` returns.

    fn      -- zero-argument callable; each call must (re)write every element of the spec's output buffer(s).
    info    -- facts recorded in the result row: the tile config the kernel runs with (`config`), where it
               came from (`config_source`, e.g. the upstream's tuned JSON for this GPU or `default`), and
               free-form `notes`.
    """

    fn: Callable[[], object]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: upstream adapters only: re-runs the untimed translation of the spec's input layout into the upstream's
    #: production layout (e.g. an LSE transposed to [H, T], as the upstream's caller hands it over), into the same
    #: buffers `fn` reads.  The gate calls it after rewriting the inputs in place; a port never has one (the kit
    #: gives none), so a port must read every data input in `fn`.
    relayout: Callable[[], object] | None = None


class KernelSpec(abc.ABC):
    """The contract of one catalog kernel."""

    id: ClassVar[str]
    category: ClassVar[str]
    catalog_rows: ClassVar[tuple[int, ...]]
    title: ClassVar[str]
    dtypes: ClassVar[tuple[str, ...]]
    #: the case dim that counts tokens (decode batch, prefill length, MoE M...): `--tokens` selects on it, the
    #: report's latency axis and the shipped Helion configs' buckets use it; None when the kernel has none
    token_dim: ClassVar[str | None] = None
    #: inputs that `prepare` may read and transform (weights converted at load time, routing or paging metadata
    #: built once per batch).  Every other tensor input is activation data: after `prepare` the gate rewrites
    #: those in place with fresh values and re-checks, so an impl that computed the answer in `prepare` fails.
    #: None (the default) = the integer tensors (ids, tables, lengths): structure, not data.
    prepared_inputs: ClassVar[tuple[str, ...] | None] = None

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
    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> Outputs:
        """The buffer(s) every impl writes: one tensor, or {name: tensor} when the kernel writes several.  The
        checker poisons each with NaN before each checked call and compares each."""

    @abc.abstractmethod
    def reference(self, inputs: Inputs, case: Case, dtype: str) -> Outputs:
        """The expected output(s), same structure as `make_output`, computed in higher precision."""

    @abc.abstractmethod
    def tolerance(self, dtype: str) -> Tolerance | dict[str, Tolerance]:
        """One bound for every output, or one per named output."""

    def data_inputs(self, inputs: Inputs) -> list[str]:
        """Names of the tensor inputs the prepare-rewrite check refreshes (see `prepared_inputs`)."""
        keep = self.prepared_inputs
        names = []
        for k, v in inputs.items():
            if not isinstance(v, torch.Tensor) or v.numel() == 0:
                continue
            if keep is None:
                if v.dtype.is_floating_point:
                    names.append(k)
            elif k not in keep:
                names.append(k)
        return names

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
    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        """Untimed set-up; returns the callable that writes `out` (every named output, when a dict).  It may
        read and transform only the spec's `prepared_inputs`; activation data must be read by the callable."""
