"""The one checker: poison the output, call, compare with the higher-precision reference."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from harness.spec import Tolerance


@dataclasses.dataclass(frozen=True)
class CheckResult:
    ok: bool
    max_abs_err: float | None
    rel_err: float | None
    tol: float
    reason: str | None = None


def poison(out: torch.Tensor) -> None:
    """Fill `out` with NaN (floating dtypes) or the dtype's minimum (integers), so unwritten elements show."""
    if out.dtype.is_floating_point or out.dtype.is_complex:
        out.fill_(float("nan"))
    else:
        out.fill_(torch.iinfo(out.dtype).min)


def compare(out: torch.Tensor, ref: torch.Tensor, tol: Tolerance) -> CheckResult:
    """||out - ref|| / ||ref|| in float64; any NaN/Inf in `out` fails, naming how many elements."""
    if out.shape != ref.shape:
        return CheckResult(False, None, None, tol.rel, f"shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    o = out.detach().to(torch.float64)
    r = ref.detach().to(torch.float64)
    finite = torch.isfinite(o)
    bad = int((~finite).sum().item())
    if bad:
        return CheckResult(False, None, None, tol.rel,
                           f"{bad} of {o.numel()} output elements are NaN/Inf (unwritten or overflowed)")
    diff = o - r
    max_abs = float(diff.abs().max().item()) if diff.numel() else 0.0
    ref_norm = float(torch.linalg.vector_norm(r).item())
    rel = float(torch.linalg.vector_norm(diff).item()) / max(ref_norm, 1e-30)
    if rel > tol.rel:
        return CheckResult(False, max_abs, rel, tol.rel, f"rel_err {rel:.3e} > tol {tol.rel:.1e} ({tol.source})")
    return CheckResult(True, max_abs, rel, tol.rel)


def check_call(fn: Callable[[], object], out: torch.Tensor, ref: torch.Tensor, tol: Tolerance) -> CheckResult:
    """Poison `out`, run `fn` once, synchronize, compare."""
    poison(out)
    fn()
    if out.is_cuda:
        torch.cuda.synchronize(out.device)
    return compare(out, ref, tol)
