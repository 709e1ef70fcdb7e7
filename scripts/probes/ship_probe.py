"""Ship a probe's winner (CPU, no GPU): read one block of `port_configs.py` output (e.g. a `shortfalls.sh` run kept
under ports/configs/<gpu>/), take its fastest gated config, and when it beats the block's first line (the port's
defaults, timed in the same process) by more than `--min-gain`, write it as the shipped entry of the probed case's
bucket in ports/configs/<gpu>/<kernel>.json, with the probe's figures as provenance.

    python scripts/probes/ship_probe.py causal_conv1d '{"T": 2048, "W": 4, "batch": 1, "dim": 2048}' \
        ports/configs/h200/shortfalls.probe-20261203.txt --block "== causal_conv1d" --gpu h200 --date 2026-12-03

Only configs the probe printed (gated `ok`, full merged JSON) can be shipped: nothing here is guessed or combined.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

LINE = re.compile(r"^\s*([0-9.]+) us\s+[0-9.]+ GB/s gate=(ok|FAIL.*?) (\{.*\})\s*$")


def block_lines(text: str, header: str) -> list[tuple[float, bool, dict]]:
    """(median us, gated ok, configs) of each config line of the first block whose `==` header starts with
    `header`."""
    out: list[tuple[float, bool, dict]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("=="):
            if inside:
                break
            inside = line.startswith(header)
            continue
        m = LINE.match(line) if inside else None
        if m:
            out.append((float(m.group(1)), m.group(2) == "ok", json.loads(m.group(3))))
    return out


def planned_case(kernel: str, params: dict, dtype: str):
    """The planned case with these params (any key order) and dtype: its params in the spec's order, the order
    the bucket key is built in when a bench looks the entry up."""
    from harness.runner import plan_rows
    from harness.shapes import load_all
    from harness.spec import Case

    for r in plan_rows([kernel], load_all(), ["helion"], [dtype], quick=False, tokens=None):
        if dict(r.params) == params:
            return Case(r.model, r.regime, dict(r.params))
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel")
    ap.add_argument("params", help="the probed case's params (JSON), as given to port_configs.py")
    ap.add_argument("probe_output", type=Path)
    ap.add_argument("--block", required=True, help="start of the block's '==' header line")
    ap.add_argument("--gpu", required=True, help="GPU slug of the probe (ports/configs/<gpu>/)")
    ap.add_argument("--date", required=True)
    ap.add_argument("--dtype", default=None, help="the probe's dtype (default: the spec's first)")
    ap.add_argument("--min-gain", type=float, default=0.05, help="fraction faster than the default (0.05: over twice "
                    "the ~2 %% run-to-run spread of these rows; a probe's default and the bench's row differ by "
                    "up to ~8 %% on ~10 us kernels)")
    args = ap.parse_args(argv)

    from harness import registry
    from ports import _configs

    try:
        text = args.probe_output.read_text()
    except OSError as e:
        print(f"error: {args.probe_output}: {e.strerror or e}", file=sys.stderr)
        return 2
    rows = block_lines(text, args.block)
    if len(rows) < 2 or not rows[0][1]:
        print(f"error: block {args.block!r} of {args.probe_output}: needs a gated default line and a candidate",
              file=sys.stderr)
        return 2
    (base_us, _ok, _cfg), *cands = rows
    best_us, _ok, best = min((r for r in cands if r[1]), key=lambda r: r[0], default=(base_us, True, None))
    if best is None or best_us > base_us * (1.0 - args.min_gain):
        print(f"{args.kernel}: no candidate beats the default {base_us:.2f} us by {args.min_gain:.0%}; nothing "
              "written")
        return 0
    impl = registry.get_impl(args.kernel, "helion")
    dtype = args.dtype or impl.spec.dtypes[0]
    case = planned_case(args.kernel, json.loads(args.params), dtype)
    if case is None:
        print(f"error: {args.kernel} {args.params} {dtype}: not a shape a bench plans (an entry there would never "
              "be looked up)", file=sys.stderr)
        return 2
    dims = impl.case_dims(case)
    key = _configs.save(args.kernel, args.gpu, dims, dtype, best, provenance={
        "date": args.date, "source": f"hand-written candidates, scripts/probes/port_configs.py ({args.block!r})",
        "probe_output": str(args.probe_output), "tuned_on": args.params, "default_us": base_us,
        "us": best_us}, bucket_dim=impl.bucket_dim())
    print(f"{args.kernel}: {base_us:.2f} -> {best_us:.2f} us -> ports/configs/{args.gpu}/{args.kernel}.json[{key}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
