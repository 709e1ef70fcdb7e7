"""The Helion awq_gemm port's split-K path (fp32 partials + sum_splits) and its M = 1 GEMV, which the spec's
test cases leave to the default configs (no split at those sizes): eager interpret mode (conftest) with a
small forced K chunk, against the spec's reference, twice (every call rewrites the output)."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import check_call
from harness.spec import Case
from ports.quantization import awq_gemm as mod
from tests.ports.triton_interp import patch_loop_bounds, run_in_triton_interpreter

CASES = [({"M": 5, "K": 512, "N": 40, "G": 64, "layer": "t"}, 128),
         ({"M": 1, "K": 384, "N": 24, "G": 128, "layer": "t"}, 128)]


@pytest.mark.parametrize(("params", "chunk"), CASES, ids=lambda v: str(v))
def test_split_k(params: dict, chunk: int) -> None:
    impl, spec = mod.IMPL, mod.IMPL.spec
    case = Case("test", "test", params)
    for dtype in spec.dtypes:
        inputs = spec.make_inputs(case, dtype, torch.device("cpu"), seed=3)
        out = spec.make_output(inputs, case, dtype)
        configs = impl.default_configs(impl.case_dims(case), dtype)
        name = "awq_mv" if case.params["M"] == 1 else "awq_mm"
        configs[name]["k_chunk"] = chunk
        plan = impl.build(inputs, out, case, dtype, configs)
        assert "sum_splits" in {ln.config_name for ln in plan.launches}
        ref = spec.reference(inputs, case, dtype)
        for _ in range(2):
            res = check_call(plan, out, ref, spec.tolerance(dtype))
            assert res.ok, f"{dtype}: {res.reason}"


def _triton_interpret_check() -> int:
    """Run in a subprocess with TRITON_INTERPRET=1: the generated Triton code with real tiles (partial M / packed
    N tiles, a 3-way K split over groups of 64, the M = 1 GEMV with a partial packed tile) in Triton's CPU
    interpreter, fp16 activations, fp32 partials."""
    import math

    import helion

    from harness.specs.quantization._common import awq_dequant_ref, awq_weight_inputs
    from ports._port import rows_block

    patch_loop_bounds()
    fails = 0
    for m, n, k, group, chunk, bk, sizes in [(5, 40, 384, 64, 128, 32, [16, 4]), (1, 24, 256, 64, 128, 64, [2])]:
        g = torch.Generator().manual_seed(0)
        inp = awq_weight_inputs(k, n, group, torch.device("cpu"), g)
        x = torch.randn(m, k, generator=g).to(torch.float16)
        ref = x.float() @ awq_dequant_ref(inp["qweight"], inp["qzeros"], inp["scales"])
        out = torch.full((m, n), float("nan"), dtype=torch.float16)
        ws = torch.full((math.ceil(k / chunk), m, n), float("nan"))
        kern = mod.awq_mv if m == 1 else mod.awq_mm
        args = (x, inp["qweight"], inp["qzeros"], inp["scales"], ws, chunk, bk)
        kern.bind(args).compile_config(helion.Config(block_sizes=sizes, num_warps=4, num_stages=2))(*args)
        red = rows_block(m)(helion.Config(block_sizes=[4, 32], num_warps=4))
        mod.sum_splits.bind((ws, out)).compile_config(red)(ws, out)
        err = float((out.float() - ref).norm() / ref.norm())
        ok = err < 2e-3 and not out.isnan().any()
        fails += not ok
        print(f"{'ok' if ok else 'FAIL'} M={m} N={n} K={k} G={group} {sizes} rel_err={err:.2e}")
    return fails


NCHECKS = 2


@pytest.mark.slow
def test_generated_triton_in_triton_interpreter() -> None:
    code = f"from {__name__} import _triton_interpret_check as f; raise SystemExit(1 if f() else 0)"
    stdout = run_in_triton_interpreter("-c", code)
    assert stdout.count("ok ") == NCHECKS, stdout
