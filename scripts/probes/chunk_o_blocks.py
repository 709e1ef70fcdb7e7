"""GPU probe (run on a GPU from the repo root): which V block sizes of the Helion chunk_o kernel pass the gate,
by sequence layout, with the within-chunk and the inter-chunk term isolated.

    PYTHONPATH=. python scripts/probes/chunk_o_blocks.py

On the H200 (2026-12-03) `harness check` failed chunk_o and gated_delta_rule_chunk at N=2, T=150, where the
default config chose a V block of 16; the V block-64 bench rows passed.  ports/linear/chunk_o.py keeps the
V block at 64 until this probe says which blocks are right.
"""

from __future__ import annotations

import torch

from harness.correctness import check_call
from harness.spec import Case
from ports.linear import chunk_o as port


def main() -> None:
    spec, dev = port.IMPL.spec, torch.device("cuda")
    for t, n in ((150, 2), (150, 1), (128, 2), (2048, 1)):
        for bv in (16, 32, 64):
            case = Case("probe", "test", {"T": t, "N": n, "H": 2, "HV": 4, "K": 128, "V": 128})
            inputs = spec.make_inputs(case, "bf16", dev, 0)
            for what in ("full", "no_intra", "no_inter"):
                i2 = dict(inputs)
                if what == "no_intra":
                    i2["k"] = torch.zeros_like(inputs["k"])
                if what == "no_inter":
                    i2["h"] = torch.zeros_like(inputs["h"])
                out, ref = spec.make_output(i2, case, "bf16"), spec.reference(i2, case, "bf16")
                cfg = {"chunk_o_kernel": {"block_sizes": [bv], "num_warps": 4, "num_stages": 2}}
                r = check_call(port.IMPL.build(i2, out, case, "bf16", cfg), out, ref, spec.tolerance("bf16"))
                err = (out.float() - ref).abs()[0].amax(dim=(1, 2)).view(n, t)
                bad = [(a, b) for a in range(n) for b in range(t) if err[a, b] > 0.05]
                print(t, n, bv, what, f"ok={r.ok} rel={r.rel_err:.3g}", len(bad), bad[:3], bad[-3:], flush=True)


if __name__ == "__main__":
    main()
