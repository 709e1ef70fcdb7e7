"""The Helion moe_router port's three launch shapes at their default configs: the H split (fp32 partials +
`moe_router_topk`) of decode and mid-size batches, the single fused launch of large batches, and T = 1 (a
specialized size-1 token dim).  Eager interpret mode (conftest) against the spec's reference, twice (every call
rewrites the output); then (slow) the generated Triton code with the real tiles in Triton's CPU interpreter."""

from __future__ import annotations

import pytest
import torch

from harness.correctness import check_call
from harness.spec import Case
from ports.moe import moe_router as mod
from tests.ports.triton_interp import patch_loop_bounds, run_in_triton_interpreter

# (T, H, E, forced h_chunk or None, launches): defaults split H for these batches; a forced chunk >= H takes the
# fused path at a test-sized T (the defaults fuse only from ~4096 tokens)
CASES = [(1, 512, 8, None, 2), (32, 1024, 8, None, 2), (37, 6144 // 8, 8, None, 2), (300, 512, 16, None, 2),
         (37, 512, 8, 512, 1), (1, 256, 8, 256, 1)]


def _case(t: int, h: int, e: int) -> Case:
    return Case("test", "test", {"T": t, "E": e, "top_k": 2, "H": h, "cap": 30.0})


def _configs(case: Case, chunk: int | None) -> dict:
    configs = mod.IMPL.default_configs(case.params, "bf16")
    if chunk is not None:
        configs[mod.moe_router_logits.name]["h_chunk"] = chunk
    return configs


@pytest.mark.parametrize(("t", "h", "e", "chunk", "n"), CASES, ids=lambda v: str(v))
def test_paths(t: int, h: int, e: int, chunk: int | None, n: int) -> None:
    impl, spec = mod.IMPL, mod.IMPL.spec
    case = _case(t, h, e)
    inputs = spec.make_inputs(case, "bf16", torch.device("cpu"), seed=5)
    out = spec.make_output(inputs, case, "bf16")
    plan = impl.build(inputs, out, case, "bf16", _configs(case, chunk))
    assert len(plan.launches) == n
    ref = spec.reference(inputs, case, "bf16")
    for _ in range(2):
        res = check_call(plan, out, ref, spec.tolerance("bf16"))
        assert res.ok, res.reason


def test_defaults_fill_the_gpu() -> None:
    """grok-2 (H 8192, E 8): every batch gets >= 128 logits programs (<= 5 fit an SM: one wave up to 8192)."""
    for t in (1, 8, 32, 128, 512, 2048, 8192, 16384):
        cfg = mod.logits_config(t, 8192, 8)
        bh, bt = cfg["block_sizes"]
        programs = -(-t // bt) * -(-8192 // cfg["h_chunk"])
        assert programs >= 128 and (t > 8192 or programs <= 5 * 132), (t, cfg, programs)
        assert bt * 8 * bh <= mod.ACC_ELEMS and cfg["range_num_stages"][1] > 1


def _patch_interpreter() -> None:
    import triton.language as tl
    from triton.language.extra import libdevice

    # libdevice stubs have no interpreter implementation; tl.math's do (looked up at call time, when patched)
    libdevice.exp = lambda v: tl.math.exp(v)

    patch_loop_bounds()


def _triton_interpret_check() -> int:
    """Run in a subprocess with TRITON_INTERPRET=1: every launch of each case compiled with its default config
    (the tiles the GPU gets: [64, 16] steps, T = 1 at [64, 1], partial token tiles, a 3-step chunk, 48-column
    chunks of a 64-column step), NaN-filled
    output and scratch, against the spec's reference.  x in fp16 (the interpreter mishandles bf16 casts; the
    kernel converts x to fp32 whatever its dtype)."""
    from ports._port import launcher, split_config

    _patch_interpreter()
    impl, spec = mod.IMPL, mod.IMPL.spec
    fails = 0
    for t, h, e, chunk, n in [(1, 512, 8, None, 2), (32, 512, 8, None, 2), (2048, 256, 8, None, 2),
                              (37, 768, 8, 192, 2), (37, 512, 8, 512, 1), (1, 256, 8, 256, 1), (5, 96, 8, None, 2)]:
        case = _case(t, h, e)
        inputs = spec.make_inputs(case, "bf16", torch.device("cpu"), seed=7)
        inputs = {"x": inputs["x"].half(), "router_weight": inputs["router_weight"]}
        configs = _configs(case, chunk)
        out = torch.full((t, e), float("nan"))
        launches = impl.launches(inputs, out, case, "bf16", configs)
        for a in launches[0].args:  # the partials scratch (if any): NaN until the first launch writes it
            if isinstance(a, torch.Tensor) and a.dim() == 3 and a.data_ptr() != out.data_ptr():
                a.fill_(float("nan"))
        for ln in launches:
            _, cfg = split_config(configs[ln.config_name], impl.host_keys)
            launcher(ln.kernel, ln.args, ln.adjust(cfg) if ln.adjust else cfg)()
        ref = spec.reference(inputs, case, "bf16")
        err = float((out - ref).abs().max())
        ok = len(launches) == n and err < 1e-5 and not out.isnan().any()
        fails += not ok
        print(f"{'ok' if ok else 'FAIL'} T={t} H={h} E={e} {dict(configs[mod.moe_router_logits.name])} "
              f"launches={len(launches)} max_err={err:.2e}")
    return fails


NCHECKS = 7


@pytest.mark.slow
def test_generated_triton_in_triton_interpreter() -> None:
    code = f"from {__name__} import _triton_interpret_check as f; raise SystemExit(1 if f() else 0)"
    stdout = run_in_triton_interpreter("-c", code, timeout=1200)
    assert stdout.count("ok ") == NCHECKS, stdout
