"""The one checker: poison every output, call, compare each with the higher-precision reference.

Two bounds per output: the global ||out - ref|| / ||ref|| (rounding error of the whole call) and a local one per
row (one slice of the output's first non-unit dim, the token axis): a single wrong token row barely moves the
global ratio of a large output (~1/sqrt(rows)) but has a row error near 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import torch

from harness.spec import Outputs, Tolerance

#: a row's error is taken relative to max(its own norm, this fraction of the rms row norm): a row whose
#: reference is legitimately tiny is not judged on rounding noise alone
ROW_NORM_FLOOR = 0.1


@dataclasses.dataclass(frozen=True)
class CheckResult:
    ok: bool
    max_abs_err: float | None
    rel_err: float | None
    tol: float
    reason: str | None = None
    #: worst per-row relative error (None when the output has a single row)
    row_err: float | None = None


def named(outputs: Outputs) -> dict[str, torch.Tensor]:
    """{name: tensor} of a spec's outputs; a single tensor is named 'out'."""
    if isinstance(outputs, torch.Tensor):
        return {"out": outputs}
    if isinstance(outputs, Mapping):
        return dict(outputs)
    raise TypeError(f"outputs must be a tensor or a dict of tensors, got {type(outputs).__name__}")


def poison(out: Outputs) -> None:
    """Fill every output with NaN (floating dtypes) or the dtype's minimum (integers), so unwritten elements show."""
    for t in named(out).values():
        if t.dtype.is_floating_point or t.dtype.is_complex:
            t.fill_(float("nan"))
        else:
            t.fill_(torch.iinfo(t.dtype).min)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """[rows, rest] view over the first non-unit dim of a 2-D or larger output (a [1, T, H, V] output has T rows,
    a [1, K] output one); a 1-D output is one row (its elements are single values, left to the global bound)."""
    shape = list(t.shape)
    while len(shape) > 2 and shape[0] == 1:
        shape.pop(0)
    return t.reshape(shape[0], -1) if len(shape) > 1 else t.reshape(1, -1)


def row_errors(diff: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-row ||diff_r|| / max(||ref_r||, ROW_NORM_FLOOR * rms row norm), float64."""
    d, r = _rows(diff), _rows(ref)
    dn = torch.linalg.vector_norm(d, dim=1)
    rn = torch.linalg.vector_norm(r, dim=1)
    rms = float(torch.sqrt((rn**2).mean()).item()) if rn.numel() else 0.0
    return dn / torch.clamp(rn, min=max(ROW_NORM_FLOOR * rms, 1e-30))


def compare_one(out: torch.Tensor, ref: torch.Tensor, tol: Tolerance, name: str = "") -> CheckResult:
    """Global and per-row relative error in float64; any NaN/Inf in `out` fails, naming how many elements."""
    what = f"{name}: " if name and name != "out" else ""
    if out.shape != ref.shape:
        return CheckResult(False, None, None, tol.rel,
                           f"{what}shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    o = out.detach().to(torch.float64)
    r = ref.detach().to(torch.float64)
    finite = torch.isfinite(o)
    bad = int((~finite).sum().item())
    if bad:
        return CheckResult(False, None, None, tol.rel,
                           f"{what}{bad} of {o.numel()} output elements are NaN/Inf (unwritten or overflowed)")
    diff = o - r
    max_abs = float(diff.abs().max().item()) if diff.numel() else 0.0
    ref_norm = float(torch.linalg.vector_norm(r).item())
    rel = float(torch.linalg.vector_norm(diff).item()) / max(ref_norm, 1e-30)
    if ref_norm == 0.0 and max_abs == 0.0:
        rel = 0.0
    if rel > tol.rel:
        return CheckResult(False, max_abs, rel, tol.rel, f"{what}rel_err {rel:.3e} > tol {tol.rel:.1e} ({tol.source})")
    row_err = None
    rows = row_errors(diff, r) if diff.numel() else None
    if rows is not None and rows.numel() > 1:
        worst = int(torch.argmax(rows).item())
        row_err = float(rows[worst].item())
        if row_err > tol.row_bound:
            return CheckResult(False, max_abs, rel, tol.rel,
                               f"{what}row {worst} of {rows.numel()}: rel_err {row_err:.3e} > local bound "
                               f"{tol.row_bound:.1e} ({tol.row_why()}); global {rel:.2e} passed", row_err)
    return CheckResult(True, max_abs, rel, tol.rel, None, row_err)


def compare(out: Outputs, ref: Outputs, tol: Tolerance | Mapping[str, Tolerance]) -> CheckResult:
    """Every named output against its reference; the first failure wins, else the output closest to its bound
    is reported (rel_err / tol largest)."""
    outs, refs = named(out), named(ref)
    if set(outs) != set(refs):
        return CheckResult(False, None, None, _tol_of(tol, next(iter(refs))).rel,
                           f"outputs {sorted(outs)} != reference outputs {sorted(refs)}")
    worst: CheckResult | None = None
    for name in refs:
        t = _tol_of(tol, name)
        res = compare_one(outs[name], refs[name], t, name)
        if not res.ok:
            return res
        if worst is None or (res.rel_err or 0.0) / max(t.rel, 1e-30) > (worst.rel_err or 0.0) / max(worst.tol, 1e-30):
            worst = res
    assert worst is not None
    return worst


def _tol_of(tol: Tolerance | Mapping[str, Tolerance], name: str) -> Tolerance:
    if isinstance(tol, Tolerance):
        return tol
    if name not in tol:
        raise KeyError(f"no tolerance for output {name!r}; the spec gives {sorted(tol)}")
    return tol[name]


def synchronize(out: Outputs) -> None:
    for t in named(out).values():
        if t.is_cuda:
            torch.cuda.synchronize(t.device)
            return


def check_call(fn: Callable[[], object], out: Outputs, ref: Outputs,
               tol: Tolerance | Mapping[str, Tolerance]) -> CheckResult:
    """Poison every output, run `fn` once, synchronize, compare."""
    poison(out)
    fn()
    synchronize(out)
    return compare(out, ref, tol)
