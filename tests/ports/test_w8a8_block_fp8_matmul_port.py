"""The Helion w8a8_block_fp8_matmul port's split-K path (fp32 partials + sum_splits) and its M = 1 GEMV, which
the spec's test cases leave to the default configs (no split at those sizes): eager interpret mode (conftest) with a
small forced K chunk, against the spec's reference, twice (every call rewrites the output)."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import check_call
from harness.spec import Case
from ports.quantization import w8a8_block_fp8_matmul as mod
from tests.ports.triton_interp import patch_loop_bounds, run_in_triton_interpreter

CASES = [({"M": 6, "N": 200, "K": 600, "layer": "t"}, 256), ({"M": 1, "N": 72, "K": 520, "layer": "t"}, 128)]


@pytest.mark.parametrize(("params", "chunk"), CASES, ids=lambda v: str(v))
def test_split_k(params: dict, chunk: int) -> None:
    impl, spec = mod.IMPL, mod.IMPL.spec
    case = Case("test", "test", params)
    for dtype in spec.dtypes:
        inputs = spec.make_inputs(case, dtype, torch.device("cpu"), seed=3)
        out = spec.make_output(inputs, case, dtype)
        configs = impl.default_configs(impl.case_dims(case), dtype)
        name = "block_fp8_mv" if case.params["M"] == 1 else "block_fp8_mm"
        configs[name]["k_chunk"] = chunk
        plan = impl.build(inputs, out, case, dtype, configs)
        assert "sum_splits" in {ln.config_name for ln in plan.launches}
        ref = spec.reference(inputs, case, dtype)
        for _ in range(2):
            res = check_call(plan, out, ref, spec.tolerance(dtype))
            assert res.ok, f"{dtype}: {res.reason}"


def _triton_interpret_check() -> int:
    """Run in a subprocess with TRITON_INTERPRET=1: the generated Triton code with real tiles (partial M / N / K
    tiles and scale blocks, a 3-way K split, the M = 1 GEMV) in Triton's CPU interpreter, fp16 operands (the
    interpreter mishandles fp8 casts; the kernels are dtype-generic), fp32 output."""
    import math

    import helion

    from ports._port import rows_block

    patch_loop_bounds()
    fails = 0
    for m, n, k, sizes, chunk in [(9, 200, 600, [16, 64], 256), (1, 200, 600, [4], 256)]:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(m, k, generator=g).half(), torch.randn(n, k, generator=g).half()
        a_s = torch.rand(m, math.ceil(k / 128), generator=g) + 0.5
        b_s = torch.rand(math.ceil(n / 128), math.ceil(k / 128), generator=g) + 0.5
        out = torch.full((m, n), float("nan"))
        ws = torch.full((math.ceil(k / chunk), m, n), float("nan"))
        kern = mod.block_fp8_mv if m == 1 else mod.block_fp8_mm
        args = (a, a_s, b, b_s, ws, chunk)
        kern.bind(args).compile_config(helion.Config(block_sizes=sizes, num_warps=4, num_stages=2))(*args)
        red = rows_block(m)(helion.Config(block_sizes=[4, 32], num_warps=4))
        mod.sum_splits.bind((ws, out)).compile_config(red)(ws, out)
        da = a.double() * a_s.double().repeat_interleave(128, 1)[:, :k]
        db = b.double() * b_s.double().repeat_interleave(128, 0)[:n].repeat_interleave(128, 1)[:, :k]
        ref = (da @ db.t()).float()
        err = float((out - ref).norm() / ref.norm())
        ok = err < 1e-5 and not out.isnan().any()
        fails += not ok
        print(f"{'ok' if ok else 'FAIL'} M={m} N={n} K={k} {sizes} rel_err={err:.2e}")
    return fails


NCHECKS = 2


@pytest.mark.slow
def test_generated_triton_in_triton_interpreter() -> None:
    code = f"from {__name__} import _triton_interpret_check as f; raise SystemExit(1 if f() else 0)"
    stdout = run_in_triton_interpreter("-c", code)
    assert stdout.count("ok ") == NCHECKS, stdout


@pytest.mark.parametrize(("m", "n", "k"),
                         [(2048, 7168, 2304), (2048, 9216, 2304), (2048, 4608, 7168), (2048, 576, 6144),
                          (512, 576, 7168), (16384, 4608, 7168)])
def test_prefill_tiles(m: int, n: int, k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefill (M > 128) tiles are 64 rows x <= 128 columns over 4 warps (the scale fold per K step holds the dot
    result and the accumulator at once: wider tiles spill), 64 columns only where 128 would leave < 2 programs
    per SM (then no split-K at M = 2048, N = 576), and the two fp8 operands load by TMA."""
    monkeypatch.setattr(mod, "sm_count", lambda: 132)
    cfg = mod.mm_config(m, n, k)
    bm, bn = cfg["block_sizes"]
    tiles = -(-m // bm) * -(-n // bn)
    assert (bm, cfg["num_warps"]) == (64, 4) and bn in (64, 128)
    assert bn == 128 or -(-m // 64) * -(-n // 128) < 264
    assert cfg["indexing"][:2] == ["tensor_descriptor"] * 2 and set(cfg["indexing"][2:]) == {"pointer"}
    assert (cfg["k_chunk"] == k) == (tiles >= 264)
