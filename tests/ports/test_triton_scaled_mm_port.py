"""The Helion triton_scaled_mm port's split-K path (fp32 partials + sum_splits) and its M = 1 GEMV, which the spec's
test cases leave to the default configs (no split at those sizes): eager interpret mode (conftest) with a
small forced K chunk, against the spec's reference, twice (every call rewrites the output)."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import check_call
from harness.spec import Case
from ports.quantization import triton_scaled_mm as mod
from tests.ports.triton_interp import patch_loop_bounds, run_in_triton_interpreter

CASES = [({"M": 6, "K": 320, "N": 40, "layer": "t"}, 128), ({"M": 1, "K": 300, "N": 17, "layer": "t"}, 128)]


@pytest.mark.parametrize(("params", "chunk"), CASES, ids=lambda v: str(v))
def test_split_k(params: dict, chunk: int) -> None:
    impl, spec = mod.IMPL, mod.IMPL.spec
    case = Case("test", "test", params)
    for dtype in spec.dtypes:
        inputs = spec.make_inputs(case, dtype, torch.device("cpu"), seed=3)
        out = spec.make_output(inputs, case, dtype)
        configs = impl.default_configs(impl.case_dims(case), dtype)
        name = "scaled_mv" if case.params["M"] == 1 else mod.KERNELS[dtype].name
        configs[name]["k_chunk"] = chunk
        plan = impl.build(inputs, out, case, dtype, configs)
        assert "sum_splits" in {ln.config_name for ln in plan.launches}
        ref = spec.reference(inputs, case, dtype)
        for _ in range(2):
            res = check_call(plan, out, ref, spec.tolerance(dtype))
            assert res.ok, f"{dtype}: {res.reason}"


def _triton_interpret_check() -> int:
    """Run in a subprocess with TRITON_INTERPRET=1: the generated Triton code with real tiles (partial M / N / K
    tiles, a 3-way K split, the M = 1 GEMV) in Triton's CPU interpreter, int8 and fp16 operands (the interpreter
    mishandles fp8 casts; the fp8 kernel is dtype-generic), fp32 output."""
    import math

    import helion

    from ports._port import rows_block

    patch_loop_bounds()
    fails = 0
    for m, n, k, sizes, chunk in [(7, 40, 320, [16, 32, 64], 128), (1, 70, 200, [8, 64], 128)]:
        for dt in (torch.int8, torch.float16):
            g = torch.Generator().manual_seed(0)
            if dt == torch.int8:
                a = torch.randint(-128, 128, (m, k), generator=g, dtype=dt)
                b = torch.randint(-128, 128, (n, k), generator=g, dtype=dt)
            else:
                a, b = torch.randn(m, k, generator=g).to(dt), torch.randn(n, k, generator=g).to(dt)
            sa, sb = torch.rand(m, 1, generator=g) + 0.5, torch.rand(n, 1, generator=g) * 1e-3
            out = torch.full((m, n), float("nan"))
            ws = torch.full((math.ceil(k / chunk), m, n), float("nan"))
            kern = mod.scaled_mv if m == 1 else (mod.scaled_mm_int8 if dt == torch.int8 else mod.scaled_mm_fp8)
            args = (a, b, sa, sb, ws, chunk)
            kern.bind(args).compile_config(helion.Config(block_sizes=sizes, num_warps=4, num_stages=2))(*args)
            red = rows_block(m)(helion.Config(block_sizes=[4, 32], num_warps=4))
            mod.sum_splits.bind((ws, out)).compile_config(red)(ws, out)
            ref = (a.double() @ b.double().t() * sa.double() * sb.double().t()).float()
            err = float((out - ref).norm() / ref.norm())
            ok = err < 1e-5 and not out.isnan().any()
            fails += not ok
            print(f"{'ok' if ok else 'FAIL'} {dt} M={m} N={n} K={k} {sizes} rel_err={err:.2e}")
    return fails


@pytest.mark.slow
def test_generated_triton_in_triton_interpreter() -> None:
    code = f"from {__name__} import _triton_interpret_check as f; raise SystemExit(1 if f() else 0)"
    stdout = run_in_triton_interpreter("-c", code)
    assert stdout.count("ok ") == 4, stdout
