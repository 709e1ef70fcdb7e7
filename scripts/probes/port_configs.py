"""GPU probe (run on a GPU from the repo root): time a Helion port under hand-written configs next to its defaults,
through the harness's one timer (CUDA graphs, L2 flushed), each config gated first.  For comparing a few tile
choices in one short device call, without autotuning.

    PYTHONPATH=. python scripts/probes/port_configs.py static_quant_fp8 '{"T": 2048, "H": 7168}' \
        '{"static_quant_fp8_kernel": {"block_sizes": [1, 8192]}}' ...

Each config argument is merged over the default configs (per kernel name, key by key; a kernel set to null is
dropped); "default" alone means the defaults.  Prints one line per config: median us, GB/s by the spec's byte
count, gate result; `--per-launch` adds one line per launch of a multi-launch port, timed alone.  The numbers are
a probe's, not a run's: nothing is written under results/.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from harness import registry
from harness.correctness import check_call
from harness.spec import Case
from harness.timing import time_device


def merge_candidate(defaults: dict, candidate: dict) -> dict:
    """A candidate merged over the default configs, per kernel name and key by key; a kernel entry set to null is
    dropped (a port that picks its launches by the entries present, e.g. lora's split-K pair vs its one kernel)."""
    out = {name: dict(entry) for name, entry in defaults.items()}
    for name, entry in candidate.items():
        if entry is None:
            out.pop(name, None)
        else:
            out.setdefault(name, {}).update(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel")
    ap.add_argument("params", help="case params as JSON, e.g. '{\"T\": 2048, \"H\": 7168}'")
    ap.add_argument("configs", nargs="*", default=["default"], help="JSON configs merged over the defaults")
    ap.add_argument("--dtype", default=None, help="default: the spec's first dtype")
    ap.add_argument("--per-launch", action="store_true", help="also time each launch of the plan alone (its own "
                    "CUDA graph, L2 flushed before each, after a whole call filled the intermediates): where the "
                    "time of a multi-launch port goes")
    args = ap.parse_args(argv)
    if args.kernel not in registry.specs() or "helion" not in registry.providers(args.kernel):
        print(f"no Helion port for {args.kernel!r}", file=sys.stderr)
        return 2
    impl = registry.get_impl(args.kernel, "helion")
    spec = impl.spec
    dtype = args.dtype or spec.dtypes[0]
    case = Case("probe", "probe", json.loads(args.params))
    dev = torch.device("cuda")
    inputs = spec.make_inputs(case, dtype, dev, 0)
    ref = spec.reference(inputs, case, dtype)
    nbytes = spec.bytes(case, dtype)
    for text in ["default", *[c for c in args.configs if c != "default"]]:
        configs = {k: dict(v) for k, v in impl.default_configs(impl.case_dims(case), dtype).items()}
        if text != "default":
            configs = merge_candidate(configs, json.loads(text))
        out = spec.make_output(inputs, case, dtype)
        try:
            plan = impl.build(inputs, out, case, dtype, configs)
            gate = check_call(plan, out, ref, spec.tolerance(dtype))
            t = time_device([plan], dev, target_s=0.2)
        except Exception as e:  # noqa: BLE001 - a config that does not compile is one line of output
            print(f"{text}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", flush=True)
            continue
        med = sorted(t.samples_us)[len(t.samples_us) // 2]
        verdict = "ok" if gate.ok else f"FAIL {str(gate.reason)[:80]}"
        print(f"{med:9.2f} us {nbytes / med / 1e3:8.1f} GB/s gate={verdict} {json.dumps(configs, sort_keys=True)}",
              flush=True)
        if args.per_launch and len(plan.steps) > 1:
            for i, (launch, step) in enumerate(zip(plan.launches, plan.steps, strict=True)):
                one = sorted(time_device([step], dev, target_s=0.1).samples_us)
                print(f"    launch {i} {launch.config_name}: {one[len(one) // 2]:.2f} us alone", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
