"""GPU-free checks of the Triton code the fused-MoE port generates (run as a script, in its own process).

Helion's interpret mode (HELION_INTERPRET=1) runs kernel bodies in eager PyTorch and ignores tile sizes, so
it never sees the code the GPU runs.  Two complementary checks, each needing a process without
HELION_INTERPRET:

  --sm90              generate the Triton code of every kernel for the default configs of a few buckets, the
                      shipped tuned entries (if any) and edge shapes (odd sizes, M = 1, top_k = 1; fp8 also
                      with the fused-quant gate-up at each of those configs), and
                      compile it to a cubin for sm_90 with Triton's bundled ptxas; prints shared memory.
  --triton-interpret  (needs TRITON_INTERPRET=1) run the generated bf16-path kernels with real tile sizes
                      (partial N and K tiles, two block_m) in Triton's CPU interpreter, on fp32 and fp16
                      tensors (the interpreter mishandles bf16 and fp8 casts), against an fp32 reference; and
                      the fp8 gate-up after its quant kernel vs the fused-quant gate-up (`fuse_quant`),
                      which must agree bit for bit.

    python tests/ports/codegen_check.py --sm90
    TRITON_INTERPRET=1 python tests/ports/codegen_check.py --triton-interpret
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def sm90(buckets: list[int], dtypes: list[str]) -> int:
    import torch

    from harness.spec import Case
    from harness.specs.moe.fused_moe import SPEC
    from ports import _configs
    from ports._port import split_config
    from ports.moe import fused_moe as fm
    from tests.ports.sm90_compile import compile_for_sm90

    # real K and N of Qwen3-235B TP8 (N=192: partial fp8 scale block), few experts to keep CPU memory small;
    # configs are taken for the real E=128, top_k=8 at each token bucket
    dims = {"M": 64, "E": 4, "top_k": 2, "K": 4096, "N": 192}
    shipped = _configs.load_file(fm.KERNEL, "h100")
    # edge shapes: the spec's odd test cases and single-row ones (M = 1, top_k = 1: every row-tiled dim is a
    # size-1 dim, which Helion specializes), with row blocks > 1 as a tuned M<=8 entry could carry
    edge_cases = [dict(c.params) for c in SPEC.test_cases()]
    edge_cases.append({"M": 1, "E": 4, "top_k": 1, "K": 256, "N": 128, "tp": 1})
    failures = 0
    for dtype in dtypes:
        runs = []
        inputs = SPEC.make_inputs(Case("codegen", "test", {**dims, "tp": 1}), dtype, torch.device("cpu"), 0)
        for m in buckets:
            runs.append((f"default M<={m}", inputs, dims,
                         fm.default_configs({**dims, "M": m, "E": 128, "top_k": 8}, dtype)))
        for key, entry in shipped.items():
            if key.startswith(f"dtype={dtype},"):
                # a key the H100 autotuner emits (every shipped entry has it false, the default) but a CPU-only
                # helion build rejects as unknown to its triton backend; dropping a default changes nothing
                cpu_unknown = ("host_tensor_descriptors",)
                cfgs = {**fm.default_configs({**dims, "top_k": 8}, dtype),
                        **{k: {f: x for f, x in v.items() if f not in cpu_unknown}
                           for k, v in entry.items() if not k.startswith("_")}}
                runs.append((f"shipped {key}", inputs, dims, cfgs))
        for params in edge_cases:
            case = Case("codegen", "test", params)
            cfgs = fm.default_configs(fm.case_dims(case), dtype)
            for name in ("per_token_group_quant_fp8", "moe_topk_sum"):
                if name in cfgs:
                    cfgs[name]["block_sizes"][0] = 4
            runs.append((f"edge {case.label()}", SPEC.make_inputs(case, dtype, torch.device("cpu"), 0),
                         fm.case_dims(case), cfgs))
        if dtype == fm.FP8:  # the opt-in gate-up with the activation quant fused (host key fuse_quant), same configs
            for label, run_inputs, run_dims, cfgs in list(runs):
                fused = {**cfgs, "moe_gate_up_fp8": {**cfgs["moe_gate_up_fp8"], "fuse_quant": True}}
                runs.append((f"{label} fuse_quant", run_inputs, run_dims, fused))
        for label, run_inputs, run_dims, cfgs in runs:
            out = torch.empty(run_dims["M"], run_dims["K"], dtype=torch.bfloat16)
            case = Case("codegen", "test", {**run_dims, "tp": 1})
            for ln in fm.IMPL.launches(run_inputs, out, case, dtype, cfgs):
                if label.endswith(" fuse_quant") and ln.kernel is not fm.moe_gate_up_fp8_fused_quant:
                    continue  # the other launches are those of the unfused run, compiled above
                role = ln.config_name
                _, cfg = split_config(cfgs[role], fm.IMPL.host_keys)
                cfg = ln.adjust(cfg) if ln.adjust else cfg
                try:
                    res = compile_for_sm90(ln.kernel, ln.args, cfg)
                    smem = ",".join(str(r.shared_bytes) for r in res)
                    print(f"ok   {dtype:18s} {label:44s} {role:12s} smem={smem} {json.dumps(dict(cfg))}")
                except Exception as e:  # report every failure, then fail the run
                    failures += 1
                    print(f"FAIL {dtype:18s} {label:44s} {role:12s} {type(e).__name__}: {str(e)[:2000]}")
    return failures


def port_sm90(module: str) -> int:
    """Any kit port: every launch of the spec's check cases and test cases, default configs, to an sm_90 cubin."""
    import importlib

    import torch

    from ports._port import split_config
    from tests.ports.sm90_compile import compile_for_sm90

    try:
        impl = importlib.import_module(module).IMPL
    except Exception as e:  # one broken port must not hide the others' results
        print(f"FAIL {module} import {type(e).__name__}: {' '.join(str(e).split())[:2000]}", flush=True)
        return 1
    spec = impl.spec
    failures = 0
    cases = spec.check_cases() + spec.test_cases()
    for dtype in spec.dtypes:
        if impl.dtype_reason(dtype):
            continue
        for case in cases:
            if spec.invalid_reason(case, dtype) or impl.case_reason(case, dtype):
                continue
            inputs = spec.make_inputs(case, dtype, torch.device("cpu"), 0)
            out = spec.make_output(inputs, case, dtype)
            cfgs = impl.default_configs(impl.case_dims(case), dtype)
            for ln in impl.launches(inputs, out, case, dtype, cfgs):
                _, cfg = split_config(cfgs[ln.config_name], impl.host_keys)
                cfg = ln.adjust(cfg) if ln.adjust else cfg
                try:
                    res = compile_for_sm90(ln.kernel, ln.args, cfg)
                    smem = ",".join(str(r.shared_bytes) for r in res)
                    print(f"ok   {module} {dtype} {case.label()} {ln.config_name} smem={smem} {json.dumps(dict(cfg))}",
                          flush=True)
                except Exception as e:  # report every failure, then fail the run
                    failures += 1
                    msg = " ".join(str(e).split())[:3000]
                    print(f"FAIL {module} {dtype} {case.label()} {ln.config_name} {type(e).__name__}: {msg}",
                          flush=True)
    return failures


def triton_interpret() -> int:
    import helion
    import torch

    from harness.specs.moe.routing import align_block_size
    from ports.moe import fused_moe as fm

    if os.environ.get("TRITON_INTERPRET") != "1" or os.environ.get("HELION_INTERPRET") == "1":
        raise SystemExit("--triton-interpret needs TRITON_INTERPRET=1 and no HELION_INTERPRET")
    failures = 0
    m, k, n, e, top_k = 5, 96, 40, 6, 2
    for dt, tol in ((torch.float32, 1e-5), (torch.float16, 3e-3)):
        g = torch.Generator().manual_seed(0)
        h = torch.randn(m, k, generator=g).to(dt)
        w1 = (torch.randn(e, 2 * n, k, generator=g) / k**0.5).to(dt)
        w2 = (torch.randn(e, k, n, generator=g) / n**0.5).to(dt)
        # expert 0 gets no token; expert 5 gets four slots
        ids = torch.tensor([[1, 5], [2, 5], [3, 4], [5, 1], [5, 4]], dtype=torch.int32)
        wts = torch.rand(m, top_k, generator=g)
        inter = torch.full((m * top_k, n), float("nan"), dtype=dt)
        y = torch.full((m * top_k, k), float("nan"), dtype=dt)
        out = torch.full((m, k), float("nan"), dtype=dt)
        r16, r32 = align_block_size(ids, e, 16), align_block_size(ids, e, 32)
        calls = [
            # BLOCK_N 16 over N=40 and BLOCK_K 32 over K=96: partial N tile, several K steps; N-tile-fastest order
            (fm.moe_gate_up, (h, w1.view(-1, k), *r16, inter, top_k, 16),
             helion.Config(block_sizes=[16, 32], num_warps=4, num_stages=2, loop_orders=[[1, 0]])),
            # a different block_m for the down GEMM, partial reduction tile (N=40, block 32)
            (fm.moe_down, (inter, w2.view(-1, n), wts.view(-1), *r32, y, 32),
             helion.Config(block_sizes=[32, 32], num_warps=4, num_stages=2)),
            (fm.moe_topk_sum, (y.view(m, top_k, k), out), helion.Config(block_sizes=[2, 64], num_warps=4)),
        ]
        for kern, args, cfg in calls:
            kern.bind(args).compile_config(cfg)(*args)
        ref = torch.zeros(m, k)
        for i in range(m):
            for j in range(top_k):
                ex = int(ids[i, j])
                gate = h[i].float() @ w1[ex, :n].float().T
                up = h[i].float() @ w1[ex, n:].float().T
                ref[i] += wts[i, j] * ((torch.nn.functional.silu(gate) * up) @ w2[ex].float().T)
        nan = int(torch.isnan(out).sum())
        rel = float((out.float() - ref).norm() / ref.norm())
        ok = nan == 0 and rel <= tol
        failures += not ok
        print(f"{'ok' if ok else 'FAIL'} triton-interpret {dt}: rel_err={rel:.2e} (tol {tol}) nan={nan}")
    failures += triton_interpret_fp8_gate_up()
    return failures


def triton_interpret_fp8_gate_up() -> int:
    """fp8 gate-up with real tiles: per_token_group_quant_fp8 + moe_gate_up_fp8 vs the fused-quant kernel.

    The interpreter's fp32 -> fp8 cast differs from torch's (a few values per thousand), so there is no torch
    reference through the cast; both paths go through the same interpreter cast, so they must agree bit for bit,
    and the unfused output must match the fp32 GEMM of the hq / hs it read back."""
    import helion
    import torch

    from harness.specs.moe.routing import align_block_size
    from ports.moe import fused_moe as fm

    failures = 0
    # K = 384: three quant groups / K steps; N = 192: a weight-scale block straddles gate|up, BLOCK_N 128 leaves
    # a partial N tile; expert 0 gets no token, expert 5 four slots
    m, k, n, e, top_k = 5, 384, 192, 6, 2
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([[1, 5], [2, 5], [3, 4], [5, 1], [5, 4]], dtype=torch.int32)
    w1 = (torch.randn(e, 2 * n, k, generator=g) * 8).to(torch.float8_e4m3fn)
    nb2, kb = -(-2 * n // 128), k // 128
    w1s = torch.rand(e * nb2, kb, generator=g) / 64 + 1e-3
    for dt in (torch.float32, torch.bfloat16):
        h = torch.randn(m, k, generator=g).to(dt)
        for bm, bn in ((16, 64), (32, 128)):
            routing = align_block_size(ids, e, bm)
            cfg = helion.Config(block_sizes=[bn], num_warps=4, num_stages=2, loop_orders=[[1, 0]])
            hq = torch.empty(m, k, dtype=torch.float8_e4m3fn)
            hs = torch.full((m, kb), float("nan"))
            unfused = torch.full((m * top_k, n), float("nan"), dtype=torch.bfloat16)
            fused = unfused.clone()
            qargs = (h, hq, hs)
            fm.per_token_group_quant_fp8.bind(qargs).compile_config(helion.Config(block_sizes=[4], num_warps=4))(
                *qargs)
            a = (hq, hs, w1.view(-1, k), w1s, *routing, unfused, top_k, bm)
            fm.moe_gate_up_fp8.bind(a).compile_config(cfg)(*a)
            b = (h, w1.view(-1, k), w1s, *routing, fused, top_k, bm)
            fm.moe_gate_up_fp8_fused_quant.bind(b).compile_config(cfg)(*b)
            # fp32 GEMM of what the unfused kernel read: dequantized hq rows x dequantized W1 of each slot's expert
            ha = (hq.float().view(m, kb, 128) * hs[:, :, None]).view(m, k)
            wd = (w1.float().view(e, nb2, 128, kb, 128)
                  * w1s.view(e, nb2, 1, kb, 1)).view(e, 2 * n, k)
            ref = torch.stack([ha[s // top_k] @ wd[ids.view(-1)[s]].T for s in range(m * top_k)])
            ref = torch.nn.functional.silu(ref[:, :n]) * ref[:, n:]
            rel = float((unfused.float() - ref).norm() / ref.norm())
            same = torch.equal(unfused.view(torch.int16), fused.view(torch.int16))
            ok = same and rel <= 1e-2 and not torch.isnan(unfused).any()
            failures += not ok
            print(f"{'ok' if ok else 'FAIL'} triton-interpret fp8 gate-up {dt} block_m={bm} BLOCK_N={bn}: "
                  f"fused == unfused bitwise: {same}; unfused vs fp32 GEMM of its hq/hs rel_err={rel:.2e} (tol 1e-2)")
    return failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sm90", action="store_true")
    ap.add_argument("--triton-interpret", action="store_true")
    ap.add_argument("--buckets", type=int, nargs="*", default=[1, 512, 2048], help="token buckets (sm90)")
    ap.add_argument("--dtypes", nargs="*", default=["bf16", "fp8_w8a8_block128"])
    ap.add_argument("--port", help="kit port modules (ports.<category>.<kernel>, comma-separated): compile their "
                                   "launches for sm_90 in this one process")
    args = ap.parse_args()
    failures = 0
    if args.port:
        sys.exit(1 if sum(port_sm90(m) for m in args.port.split(",")) else 0)
    if args.sm90:
        failures += sm90(args.buckets, args.dtypes)
    if args.triton_interpret:
        failures += triton_interpret()
    if not (args.sm90 or args.triton_interpret):
        ap.error("choose --sm90 and/or --triton-interpret")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
