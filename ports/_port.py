"""The port kit: everything a Helion port shares, so a port file holds only its kernels, its default configs and
its launch steps.

A port subclasses `HelionPort` and writes

* its `@helion.kernel`s at module level (Helion rejects closures),
* `default_configs(dims, dtype)`: {kernel name: config entry} for a case, chosen by shape the way upstreams write
  `get_default_config` (so a GPU without shipped configs still runs well); an entry is Helion Config fields plus
  any `host_keys` (values the host side needs, e.g. fused_moe's routing block `block_m`),
* `launches(inputs, out, case, dtype, configs)`: the timed steps, in order, as `Launch(kernel, args)`; scratch
  buffers and untimed set-up happen here (it runs inside `prepare`),

and ends with `IMPL = MyPort()`.  The base does the rest: availability and versions, shipped-config lookup by
bucket (`ports/configs/<gpu>/<kernel>.json`, bucketed on the spec's `token_dim`), filling kernels a shipped entry
lacks from the defaults, falling back to the defaults when a shipped entry no longer fits the kernel (said in the
row), provenance in the row, Helion's interpret mode on CPU, and the `make tune` hook (autotune each launch,
keep what the harness's own timer finds faster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import helion
import torch

from harness.spec import Case, Impl, Inputs, Outputs, Prepared
from ports import _configs

ConfigEntry = dict[str, Any]
Configs = dict[str, ConfigEntry]


@dataclasses.dataclass(frozen=True)
class Launch:
    """One timed kernel launch: `kernel(*args)` with the config entry named `name` (default: the kernel's name).

    `adjust` rewrites the Helion Config for this launch only (e.g. a row block forced to 1 when the launch sees
    a single row, see `rows_block`)."""

    kernel: helion.Kernel
    args: tuple[object, ...]
    name: str | None = None
    adjust: Callable[[helion.Config], helion.Config] | None = None

    @property
    def config_name(self) -> str:
        return self.name or self.kernel.name


@dataclasses.dataclass
class Plan:
    """The compiled steps of one prepared call; calling it runs them in order (the timed region)."""

    launches: list[Launch]
    configs: Configs
    notes: list[str]
    steps: tuple[Callable[[], object], ...] = ()

    def __call__(self) -> None:
        for step in self.steps:
            step()


def interpret() -> bool:
    return os.environ.get("HELION_INTERPRET") == "1"


def split_config(entry: Mapping[str, Any], host_keys: Sequence[str] = ()) -> tuple[dict[str, Any], helion.Config]:
    """(host values, Helion Config) of one config entry."""
    fields = dict(entry)
    host = {k: fields.pop(k) for k in host_keys if k in fields}
    return host, helion.Config(**fields)


def rows_block(rows: int, index: int = 0) -> Callable[[helion.Config], helion.Config]:
    """Config adjuster: block size `index` (the row tile's; 0 unless a registered block size comes first) set to 1
    when the launch sees a single row.

    static_shapes=False still specializes a size-1 dim, and Helion then emits code that reshapes the row tile to
    a scalar, which fails to compile when that tile's block size is > 1 (seen for M = 1).  A config tuned for
    M <= 8 may carry block 4 or 8 there."""

    def adjust(config: helion.Config) -> helion.Config:
        sizes = list(config.get("block_sizes", []))  # type: ignore[arg-type]
        if rows != 1 or len(sizes) <= index or sizes[index] == 1:
            return config
        sizes[index] = 1
        return helion.Config(**{**dict(config), "block_sizes": sizes})

    return adjust


def pow2_at_most(block: int, dim: int, floor: int = 1) -> int:
    """`block`, shrunk to the next power of two >= dim (tiles wider than the dim only add masked lanes)."""
    return max(floor, min(block, 1 << max(0, (int(dim) - 1).bit_length())))


def row_tile(rows: int, cols: int, max_cols: int = 1024, max_elems: int = 8192, per_sm: int = 4) -> dict[str, Any]:
    """Config of a memory-bound kernel over [rows, cols] tiles: the column block as wide as `cols` allows (up to
    `max_cols`; a power of two dividing `cols` when one >= 64 exists, so no lanes are masked), then rows up to
    `max_elems` per tile, but never so few programs that the SMs idle: measured on the H200 (silu_and_mul, R=8,
    N=256), one 2048-element tile on one SM took 9 us where eight 256-element programs took 5 us (a lone SM
    cannot keep enough loads in flight after the L2 flush), so the tile shrinks until there are `per_sm`
    programs per SM or it is one row of columns."""
    bn = pow2_at_most(max_cols, cols, floor=16)
    c = bn
    while c >= 64 and cols % c:
        c //= 2
    if c >= 64 and cols % c == 0:
        bn = c
    want = max(1, rows * cols // (per_sm * sm_count()))
    elems = max(bn, min(max_elems, 1 << max(0, want.bit_length() - 1)))
    br = pow2_at_most(max(1, elems // bn), rows, floor=1)
    return {"block_sizes": [br, bn], "num_warps": 8 if br * bn >= 4096 else 4}


def fill_sms(block: int, least: int, programs: Callable[[int], int], per_sm: int = 2) -> int:
    """`block` halved (not below `least`) while `programs(block)` launches fewer than `per_sm` programs per SM:
    the shrink every grid heuristic here ends with, so small shapes still spread over the GPU."""
    while block > least and programs(block) < per_sm * sm_count():
        block //= 2
    return block


def fill_sms_2d(br: int, bc: int, rows: int, cols: int, least: int, per_sm: int = 4) -> tuple[int, int]:
    """[br, bc] tile over [rows, cols], halved (rows first, then columns; not below `least` elements) while the
    grid has fewer than `per_sm` programs per SM."""
    while br * bc > least and -(-rows // br) * -(-cols // bc) < per_sm * sm_count():
        if br > 1:
            br //= 2
        else:
            bc //= 2
    return br, bc


def elementwise_config(rows: int, cols: int, target: int = 8192, max_cols: int = 2048) -> dict[str, Any]:
    """[rows, cols] tiles of ~`target` elements of a one-pass kernel: columns first (up to `max_cols`), the rest
    in rows; 8 warps from 4096 elements."""
    bn = pow2_at_most(max_cols, cols, floor=16)
    br = pow2_at_most(max(1, target // bn), rows, floor=1)
    return {"block_sizes": [br, bn], "num_warps": 8 if br * bn >= 4096 else 4}


def row_chunk(b: int, v: int, most: int = 16384, least: int = 2048) -> int:
    """Columns per program of a split row (B rows of V): the largest power of two in [least, most] that still
    gives >= 2 programs per SM over the B rows (a whole row when V is small)."""
    return pow2_at_most(fill_sms(most, least, lambda c: b * -(-v // c)), v, floor=16)


def row_chunk_config(b: int, v: int, inner: int) -> dict[str, Any]:
    """Config of a kernel streaming `row_chunk(b, v)` columns per program: inner blocks of up to `inner` columns,
    8 warps at `inner`."""
    block = min(inner, row_chunk(b, v))
    return {"block_sizes": [block], "num_warps": 8 if block >= inner else 4}


def row_partials(x: torch.Tensor, chunk: int, *dtypes: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Scratch of a split-row reduction over x [B, V]: one [B, cdiv(V, chunk)] buffer per dtype."""
    b, v = x.shape
    return tuple(torch.empty(b, -(-v // chunk), dtype=dt, device=x.device) for dt in dtypes)


def state_block_config(heads: int, k: int, v: int, max_bv: int = 64) -> dict[str, Any]:
    """V block of a per-(request, head) recurrent-state kernel ([K, BV] fp32 state tile): the widest (<= max_bv)
    that still gives >= 2 programs per SM, floor 16 (64-byte fp32 rows); 4 warps under 8K elements, 8 from 8K."""
    bv = fill_sms(pow2_at_most(max_bv, v, floor=16), 16, lambda b: heads * -(-v // b))
    return {"block_sizes": [bv], "num_warps": 4 if k * bv < 8192 else 8, "num_stages": 1}


def sm_count() -> int:
    """Multiprocessors of the current GPU (132 on H100/H200 SXM); the H100/H200 count without a GPU, so CPU tests
    see the defaults the GPU gets."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
    return 132


_CPU_MM_LIB: torch.library.Library | None = None


def _cpu_interpret_support() -> None:
    """Interpret mode runs hl.dot as torch.mm(..., out_dtype=fp32), which torch's CPU build lacks (aten::mm.dtype
    has no CPU kernel); register the exact equivalent once: upcast both operands, then mm (a bf16 x bf16 product
    is exact in fp32, so this is the fp32-accumulate GEMM the GPU runs)."""
    global _CPU_MM_LIB
    if _CPU_MM_LIB is not None:
        return
    probe = torch.ones(1, 1, dtype=torch.bfloat16)
    try:
        torch.mm(probe, probe, out_dtype=torch.float32)
        return
    except (NotImplementedError, RuntimeError):
        pass

    def mm_dtype(a: torch.Tensor, b: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
        return torch.mm(a.to(out_dtype), b.to(out_dtype))

    lib = torch.library.Library("aten", "IMPL")
    lib.impl("mm.dtype", mm_dtype, "CPU")
    _CPU_MM_LIB = lib


@contextlib.contextmanager
def bound_with_args(kernel: helion.Kernel, args: Sequence[object]) -> Iterator[Any]:
    """`kernel.bind(args)`, with these args as the runtime values its code generation may consult.

    With static_shapes=False one bound kernel serves every shape of a specialization, and Helion keeps only weak
    references to the tensors of the call that created it.  Once those are freed (the harness frees each row's
    inputs), a later compile of a tensor-descriptor (TMA) config cannot prove its bases 16-byte aligned and
    silently falls back to pointer loads: seen on the H200 probe's w8a8 candidates, a TMA config compiled to 157
    registers alone and to 191 with cp.async after another shape's call in the same process."""
    bound = kernel.bind(tuple(args))
    names = list(inspect.signature(kernel.fn).parameters)
    with bound.env.use_runtime_arg_values(dict(zip(names, args, strict=False))):
        yield bound


def launcher(kernel: helion.Kernel, args: tuple[object, ...], config: helion.Config) -> Callable[[], object]:
    """Zero-argument call of `kernel` on `args` with `config`, compiled now (never autotunes)."""
    if interpret():
        if any(isinstance(a, torch.Tensor) and a.device.type == "cpu" for a in args):
            _cpu_interpret_support()
        # eager interpret mode runs the kernel body in PyTorch; tunable tile sizes are not applied
        return lambda: kernel(*args)
    with bound_with_args(kernel, args) as bound:
        compiled = bound.compile_config(config)
    return lambda: compiled(*args)


def module_kernels(module_name: str) -> dict[str, helion.Kernel]:
    """The module-level Helion kernels of a port module, by name."""
    mod = sys.modules[module_name]
    return {k.name: k for k in vars(mod).values() if isinstance(k, helion.Kernel)}


class HelionPort(Impl):
    """Base of every Helion port (see the module docstring for what a port writes)."""

    provider: ClassVar[str] = "helion"
    #: config-entry fields that are host values, not Helion Config fields
    host_keys: ClassVar[tuple[str, ...]] = ()
    #: what the timed region fuses and why (one line each); recorded in every row's notes
    notes: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------------------------------- what a port writes

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        raise NotImplementedError

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        raise NotImplementedError

    def case_dims(self, case: Case) -> dict[str, Any]:
        """The dims that select a config (bucket key order): every case param, by default."""
        return dict(case.params)

    def host_candidates(self, name: str, dims: Mapping[str, Any], dtype: str) -> list[dict[str, Any]]:
        """Host-value overrides `make tune` tries for kernel `name` (each autotuned separately); [{}] = none."""
        return [{}]

    # ------------------------------------------------------------------------------------------------- the base

    @property
    def spec(self):
        from harness import registry

        return registry.specs()[self.kernel]

    def kernels(self) -> dict[str, helion.Kernel]:
        return module_kernels(type(self).__module__)

    def available(self) -> str | None:
        if torch.cuda.is_available() or interpret():
            return None
        return "no CUDA device (HELION_INTERPRET=1 runs Helion's eager interpret mode on CPU)"

    def versions(self) -> dict[str, str]:
        return {"helion": importlib.metadata.version("helion")}

    def bucket_dim(self) -> str | None:
        return self.spec.token_dim

    def build(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Mapping[str, Any]) -> Plan:
        """Launch steps for `configs`, each compiled now (raises helion.exc.InvalidConfig for a config that does
        not fit the kernel)."""
        configs = {name: dict(entry) for name, entry in configs.items()}
        launches = self.launches(inputs, out, case, dtype, configs)
        steps = []
        for ln in launches:
            if ln.config_name not in configs:
                raise KeyError(f"{type(self).__name__}: no config entry for kernel {ln.config_name!r} "
                               f"(have {sorted(configs)})")
            _, cfg = split_config(configs[ln.config_name], self.host_keys)
            if ln.adjust is not None:
                cfg = ln.adjust(cfg)
            steps.append(launcher(ln.kernel, ln.args, cfg))
        used = {ln.config_name for ln in launches}
        plan_configs = {k: v for k, v in configs.items() if k in used}
        return Plan(launches, plan_configs, list(self.notes), tuple(steps))

    def configs_for(self, case: Case, dtype: str) -> tuple[Configs, str, Configs]:
        """(configs, source, defaults): the shipped entry of this case's bucket on this GPU, completed from the
        defaults, or the defaults."""
        dims = self.case_dims(case)
        defaults = self.default_configs(dims, dtype)
        shipped, source = _configs.lookup(self.kernel, _configs.gpu_slug_here(), dims, dtype, self.bucket_dim())
        if shipped is None:
            return defaults, source, defaults
        missing = [k for k in defaults if k not in shipped]
        for name in missing:  # a shipped entry may predate a kernel of the port: fill the gap, say so
            shipped[name] = defaults[name]
        if missing:
            source += f" (+default {', '.join(missing)})"
        return shipped, source, defaults

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        configs, source, defaults = self.configs_for(case, dtype)
        try:
            plan = self.build(inputs, out, case, dtype, configs)
        except helion.exc.InvalidConfig as e:
            if configs is defaults:
                raise
            # a shipped entry written for an older version of the kernels (Config fields are per load/loop)
            source = f"default (shipped entry {source} rejected: {str(e).splitlines()[0][:200]})"
            plan = self.build(inputs, out, case, dtype, defaults)
        notes = list(plan.notes)
        if interpret():
            notes.append("HELION_INTERPRET=1: eager interpret mode, config tile sizes not applied")
        return Prepared(fn=plan, info={"config": plan.configs, "config_source": source, "notes": "; ".join(notes)})

    # ---------------------------------------------------------------------------------------- tuning (make tune)

    def tune(self, inputs: Inputs, case: Case, dtype: str, budget_s: float) -> tuple[Configs, dict[str, Any]]:
        """Autotune each launched kernel of this case on the current GPU (Helion 'quick' effort, seeded with the
        default); never called by prepare.

        Kernels are tuned in launch order, each on realistic inputs (the plan runs once first, so intermediates
        hold real values); for every host candidate (`host_candidates`) one autotune run; the fastest of the
        default and the candidates is kept, all timed with the harness's one timer (CUDA-graph replay, L2
        flushed).  `budget_s` is split evenly over the autotune runs.  Returns (configs, provenance with the
        measured microseconds)."""
        from harness import timing

        device = next(v.device for v in inputs.values() if isinstance(v, torch.Tensor))
        dims = self.case_dims(case)
        defaults = self.default_configs(dims, dtype)
        out = self.spec.make_output(inputs, case, dtype)

        def plan_of(configs: Mapping[str, Any]) -> Plan:
            plan = self.build(inputs, out, case, dtype, configs)
            plan()  # realistic contents in every intermediate a later kernel reads
            return plan

        def us(fn: Callable[[], object]) -> float:
            return timing.time_device([fn], device, target_s=0.2).median_us

        names = list(dict.fromkeys(ln.config_name for ln in plan_of(defaults).launches))
        runs = sum(len(self.host_candidates(n, dims, dtype)) for n in names)
        per_run = max(10, int(budget_s / max(1, runs)))
        for kern in self.kernels().values():
            kern.settings.autotune_effort = "quick"
            kern.settings.autotune_budget_seconds = per_run
            kern.settings.autotune_benchmark_subprocess = False

        kept: Configs = {}
        times: dict[str, Any] = {}
        for name in names:
            base = {**defaults, **kept}
            plan = plan_of(base)
            ln = next(x for x in plan.launches if x.config_name == name)
            host, default_cfg = split_config(base[name], self.host_keys)
            step = launcher(ln.kernel, ln.args, ln.adjust(default_cfg) if ln.adjust else default_cfg)
            default_us = us(step)
            best = (default_us, dict(base[name]), "default")
            tried: dict[str, float] = {}
            for cand in self.host_candidates(name, dims, dtype):
                trial = {**base, name: {**base[name], **cand}}
                tplan = plan_of(trial)
                tln = next(x for x in tplan.launches if x.config_name == name)
                _, seed_cfg = split_config(trial[name], self.host_keys)
                tln.kernel.settings.autotune_seed_configs = [seed_cfg]
                cfg = tln.kernel.bind(tln.args).autotune(tln.args, force=True)
                if tln.adjust:
                    cfg = tln.adjust(cfg)
                t = us(launcher(tln.kernel, tln.args, cfg))
                label = ",".join(f"{k}={v}" for k, v in cand.items()) or "autotuned"
                tried[label] = round(t, 2)
                if t < best[0]:
                    best = (t, {**host, **cand, **dict(cfg)}, label)
            kept[name] = best[1]
            times[name] = {"default_us": round(default_us, 2), "tuned_us": tried, "kept": best[2],
                           "kept_us": round(best[0], 2)}
        provenance = {"kernels": times, "total_us": round(us(plan_of({**defaults, **kept})), 2),
                      "default_total_us": round(us(plan_of(defaults)), 2), "budget_s": budget_s}
        return kept, provenance


def check_main(impl: HelionPort, cases: Sequence[Case] | None = None) -> None:
    """`python -m ports.<category>.<kernel>`: run the port on the spec's check cases (GPU) or test cases (CPU,
    interpret mode) through the harness checker; exits non-zero on a failure."""
    from harness.correctness import check_call

    if impl.available() is not None:
        raise SystemExit(impl.available())
    spec = impl.spec
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cases = list(cases) if cases is not None else (spec.check_cases() if device.type == "cuda" else spec.test_cases())
    failed = 0
    for case in cases:
        for dtype in spec.dtypes:
            if impl.dtype_reason(dtype) or spec.invalid_reason(case, dtype) or impl.case_reason(case, dtype):
                continue
            inputs = spec.make_inputs(case, dtype, device, seed=0)
            out = spec.make_output(inputs, case, dtype)
            prepared = impl.prepare(inputs, out, case, dtype)
            res = check_call(prepared.fn, out, spec.reference(inputs, case, dtype), spec.tolerance(dtype))
            print(f"{spec.id} helion {dtype} {case.label()}: rel_err={res.rel_err} "
                  f"{'ok' if res.ok else res.reason} [{prepared.info['config_source']}]")
            failed += not res.ok
    if failed:
        raise SystemExit(f"{failed} check(s) failed")
