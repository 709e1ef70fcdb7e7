"""CPU check of scripts/probes/shortfalls.sh (no GPU): every candidate config it would time must build.

For each `port_configs.py <kernel> <params> <configs...>` call in the script, this builds the spec's inputs at
those params on the CPU, merges each config over the port's defaults exactly as port_configs.py does, and for
each launch binds the Helion kernel, generates its Triton code and compiles it for sm_90 with Triton's bundled
ptxas (the capture of tests/ports/sm90_compile.py, keeping the PTX).  A config field a kernel does not have
raises InvalidConfig here, as it would on the GPU.  One line per launch:

    ok|FAIL <kernel> #<i> <launch config name> regs=<n> spill=<store>/<load> smem=<bytes> cp.async=<n>
        ranges=<the tl.range(...) calls Helion emitted> cfg=<the merged config>

`cp.async` counts the PTX async copies (a dot-free loop Triton pipelined has them; Triton 3.6 only pipelines such
a loop when its `range_num_stages` entry asks, see /work/notes/pipelining_survey.md).  Exit status 1 when any
candidate fails.

    .venv/bin/python scripts/probes/shortfalls_check.py [--only kernel,...] [--script scripts/probes/shortfalls.sh]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PTXAS = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" \
    / "triton" / "backends" / "nvidia" / "bin" / "ptxas"


def probe_calls(script: Path) -> list[tuple[str, str, str | None, list[str]]]:
    """(kernel, params JSON, dtype or None, config JSONs) of each port_configs.py call in the script."""
    text = re.sub(r"\\\n", " ", script.read_text())
    calls = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or "port_configs.py" not in line:
            continue
        words = shlex.split(line, comments=True)
        words = words[[i for i, w in enumerate(words) if w.endswith("port_configs.py")][0] + 1:]
        dtype = None
        if "--dtype" in words:
            i = words.index("--dtype")
            dtype = words[i + 1]
            del words[i:i + 2]
        words = [w for w in words if w != "--per-launch"]  # a timing flag: nothing to compile
        if "||" in words:  # the script's `|| echo ...` after each call
            words = words[:words.index("||")]
        calls.append((words[0], words[1], dtype, words[2:]))
    return calls


def as_h200() -> None:
    """Make a CPU-only Helion build answer as the H200 for the device queries a candidate may need: the SM count
    of a persistent `pid_type` grid (it asserts on a CPU tensor), maxnreg support and the register file (without
    CUDA it drops `maxnreg` silently) and tensor-descriptor support (without it `indexing: tensor_descriptor`
    falls back to pointers, so the compile would not be the one the GPU runs)."""
    import helion._compat as compat
    import helion.autotuner.config_spec as config_spec
    import helion.runtime as runtime

    from ports._port import sm_count

    gpu_num_sm = runtime.get_num_sm

    def get_num_sm(device: Any, *, reserved_sms: int = 0) -> int:
        if getattr(device, "type", device) == "cpu":
            return max(1, sm_count() - reserved_sms)
        return gpu_num_sm(device, reserved_sms=reserved_sms)

    runtime.get_num_sm = get_num_sm  # type: ignore[assignment]
    compat._supports_maxnreg = lambda: True  # type: ignore[assignment]
    compat._supports_tensor_descriptor = lambda: True  # type: ignore[assignment]
    compat._regs_per_block = lambda: 65536  # type: ignore[assignment]
    config_spec._regs_per_block = lambda: 65536  # type: ignore[assignment]


def compile_asm(kernel: Any, args: tuple[object, ...], config: Any) -> list[dict[str, Any]]:
    """sm_90 compile of one launch (tests/ports/sm90_compile.py's capture), with ptxas -v and the emitted ranges."""
    import torch
    import triton
    from triton.compiler import ASTSource

    from ports._port import bound_with_args
    from tests.ports.sm90_compile import _TRITON_TYPES, H100

    with bound_with_args(kernel, args) as bound:  # as the harness compiles: see bound_with_args
        code = bound.to_triton_code(config)
        host = bound.compile_config(config)
    launches: list[tuple[Any, tuple[int, ...], tuple[object, ...], int, int, dict[str, Any]]] = []

    def capture(k: Any, grid: tuple[int, ...], *a: object, num_warps: int, num_stages: int, **kw: Any) -> None:
        launches.append((k, grid, a, num_warps, num_stages, kw))

    host(*args, _launcher=capture)
    res = []
    for k, grid, a, nw, ns, kw in launches:
        sig: dict[str, str] = {}
        constexprs: dict[str, object] = {}
        attrs: dict[tuple[int, ...], list[list[object]]] = {}
        for i, (param, v) in enumerate(zip(k.params, a, strict=True)):
            name = param.name
            if param.is_constexpr:
                sig[name] = "constexpr"
                constexprs[name] = v
            elif isinstance(v, int) and not isinstance(v, bool) and v == 1 and not param.do_not_specialize:
                sig[name] = "constexpr"
                constexprs[name] = 1
            elif isinstance(v, torch.Tensor):
                sig[name] = "*" + _TRITON_TYPES[v.dtype]
                if v.data_ptr() % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
            elif isinstance(v, bool):
                sig[name] = "i1"
            elif isinstance(v, int):
                sig[name] = "i64" if abs(v) >= 2**31 else "i32"
                if v % 16 == 0 and not param.do_not_specialize:
                    attrs[(i,)] = [["tt.divisibility", 16]]
            elif isinstance(v, float):
                sig[name] = "fp32"
            else:
                raise TypeError(f"argument {name}: cannot type {type(v).__name__} for Triton")
        # maxnreg is a compile option the launcher passes on; anything else it passes is shown, not compiled in
        options: dict[str, Any] = {"num_warps": nw, "num_stages": ns}
        if kw.get("maxnreg") is not None:
            options["maxnreg"] = kw["maxnreg"]
        extra = {n: x for n, x in kw.items() if n != "maxnreg" and x not in (None, False, 0, (), "")}
        c = triton.compile(ASTSource(fn=k, signature=sig, constexprs=constexprs, attrs=attrs), target=H100,
                           options=options)
        ptx = c.asm["ptx"]
        with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
            f.write(ptx)
            f.flush()
            p = subprocess.run([str(PTXAS), "-v", "--gpu-name", "sm_90a", "-o", "/dev/null", f.name],
                               capture_output=True, text=True, check=False)
        regs = re.findall(r"Used (\d+) registers", p.stderr)
        spill = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", p.stderr)
        res.append({
            "grid": tuple(int(g) for g in grid), "regs": ",".join(regs) or "?",
            "spill": ",".join(f"{st}/{ld}" for st, ld in spill) or "?", "smem": int(c.metadata.shared),
            "cp_async": len(re.findall(r"cp\.async\.(?:ca|cg)", ptx)),
            "ranges": [r.strip() for r in re.findall(r"tl\.range\(([^\n]*)\)", code)],
            "launch": extra,
        })
    return res


def check_call(kernel: str, params: str, dtype: str | None, configs: list[str]) -> int:
    import torch

    from harness import registry
    from harness.spec import Case
    from ports._port import split_config
    from scripts.probes.port_configs import merge_candidate

    impl = registry.get_impl(kernel, "helion")
    spec = impl.spec
    dt = dtype or spec.dtypes[0]
    case = Case("probe", "probe", json.loads(params))
    inputs = spec.make_inputs(case, dt, torch.device("cpu"), 0)
    failures = 0
    for i, text in enumerate(["default", *[c for c in configs if c != "default"]]):
        cfgs = {k: dict(v) for k, v in impl.default_configs(impl.case_dims(case), dt).items()}
        if text != "default":
            try:
                merged = json.loads(text)
            except json.JSONDecodeError as e:
                failures += 1
                print(f"FAIL {kernel} #{i} not JSON ({e}): {text}", flush=True)
                continue
            for name in merged:
                if name not in cfgs and name not in impl.kernels():  # no launch could read it: a typo
                    failures += 1
                    print(f"FAIL {kernel} #{i} no kernel named {name!r} (have {sorted(cfgs)})", flush=True)
            cfgs = merge_candidate(cfgs, merged)
        out = spec.make_output(inputs, case, dt)
        try:
            launches = impl.launches(inputs, out, case, dt, cfgs)
        except Exception as e:  # noqa: BLE001 - a config the host side rejects is one failure line
            failures += 1
            print(f"FAIL {kernel} #{i} launches {type(e).__name__}: {' '.join(str(e).split())[:400]}", flush=True)
            continue
        for ln in launches:
            name = ln.config_name
            try:
                _, cfg = split_config(cfgs[name], impl.host_keys)
                cfg = ln.adjust(cfg) if ln.adjust else cfg
                for r in compile_asm(ln.kernel, ln.args, cfg):
                    ranges = " | ".join(r["ranges"]) or "-"
                    print(f"ok   {kernel} #{i} {name} regs={r['regs']} spill={r['spill']} smem={r['smem']} "
                          f"cp.async={r['cp_async']} grid={r['grid']} ranges=[{ranges}] launch={r['launch'] or '-'} "
                          f"cfg={json.dumps(dict(cfg), sort_keys=True)}", flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure, then fail the run
                failures += 1
                print(f"FAIL {kernel} #{i} {name} {type(e).__name__}: {' '.join(str(e).split())[:600]} "
                      f"cfg={json.dumps(cfgs.get(name), sort_keys=True)}", flush=True)
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--script", type=Path, default=ROOT / "scripts" / "probes" / "shortfalls.sh")
    ap.add_argument("--only", default=None, help="comma-separated kernels to check (default: every call)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    as_h200()
    failures = 0
    calls = probe_calls(args.script)
    for kernel, params, dtype, configs in calls:
        if only and kernel not in only:
            continue
        print(f"== {kernel} {params} dtype={dtype or 'spec default'}: {len(configs)} candidates + default", flush=True)
        failures += check_call(kernel, params, dtype, configs)
    print(f"{len(calls)} calls, {failures} failing launches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
