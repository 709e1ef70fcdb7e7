"""The fused_moe_wna16 port's generated Triton code in Triton's CPU interpreter, with real tiles, on the prefill
(block_m >= 64) config path, plus its default-config buckets.

Helion's interpret mode (HELION_INTERPRET=1, the generated tests) runs the kernel body in eager PyTorch and ignores
tile sizes, so it never sees the K loop over packed bytes, the [BN, BK / 2] -> [BN, BK] nibble interleave (join +
reshape), the contiguous [BM, BK] activation slice, or the scale / zero-point prefetch one step ahead.  Here the
Triton code runs without HELION_INTERPRET and with TRITON_INTERPRET=1, in its own process, with block_m 128 and 64,
BK below the group (two steps per scale, the prefetch index crossing groups and wrapping after the last), partial
row blocks (routing padding), a partial N tile (N = 320, BN = 128) and top_k 2.  The interpreter mishandles bf16
casts: the spec's bf16 activations and scales run as fp16 (the kernel computes in the activation dtype), against the
spec's fp32 reference and bf16 tolerance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ports.triton_interp import run_as_script, run_in_triton_interpreter

ROOT = Path(__file__).resolve().parent.parent.parent


def test_prefill_bucket_has_large_tiles_and_decode_keeps_group_steps() -> None:
    from ports.moe.fused_moe_wna16 import default_configs

    scout = {"E": 16, "top_k": 1, "H": 5120, "I": 1024, "G": 128, "tp": 8}
    for layer in ("gate_up", "down"):
        big = default_configs({**scout, "M": 2048, "layer": layer}, "w4a16")["wna16_moe_gemm"]
        assert big["block_m"] == 128 and big["block_k"] == 64 and big["block_sizes"] == [128], big
        assert big["num_warps"] == 8 and big["num_stages"] == 4, big
        small = default_configs({**scout, "M": 32, "layer": layer}, "w4a16")["wna16_moe_gemm"]
        assert small["block_m"] == 16 and small["block_k"] == 128 and small["num_warps"] == 4, small
    # a group below 64 bounds the K step (one scale per step)
    g32 = default_configs({**scout, "G": 32, "M": 2048, "layer": "down"}, "w4a16")["wna16_moe_gemm"]
    assert g32["block_k"] == 32


def _interpret_main() -> None:
    import torch

    from harness.correctness import check_call
    from harness.spec import Case
    from ports.moe import fused_moe_wna16 as port

    spec = port.IMPL.spec
    big = {"block_m": 128, "block_k": 64, "block_sizes": [128], "num_warps": 8, "num_stages": 4,
           "loop_orders": [[1, 0]]}
    mid = {"block_m": 64, "block_k": 32, "block_sizes": [64], "num_warps": 4, "num_stages": 4,
           "loop_orders": [[1, 0]]}
    runs = [  # (case params, config or None for the default)
        # G = 128, K = 256: BK 64 steps two per group; 600 slots over 4 experts: partial 128-row blocks
        ({"M": 300, "E": 4, "top_k": 2, "H": 256, "I": 128, "G": 128, "tp": 1, "layer": "gate_up"}, big),
        # N = 320 over BN = 128: a partial N tile; G = 64 = BK (one step per group); the router weight epilogue
        ({"M": 300, "E": 4, "top_k": 2, "H": 320, "I": 128, "G": 64, "tp": 1, "layer": "down"}, big),
        # block_m 64, BK 32 < G 64, BN 64 over N = 320
        ({"M": 150, "E": 4, "top_k": 2, "H": 320, "I": 128, "G": 64, "tp": 1, "layer": "down"}, mid),
        # the default configs of a prefill-sized case (block_m 128 from 150 slots per expert)
        ({"M": 300, "E": 4, "top_k": 2, "H": 256, "I": 128, "G": 128, "tp": 1, "layer": "gate_up"}, None),
    ]
    for params, cfg in runs:
        case = Case("interp", "test", params)
        for dtype in spec.dtypes:
            inputs = spec.make_inputs(case, dtype, torch.device("cpu"), seed=7)
            inputs = {k: v.half() if v.dtype == torch.bfloat16 else v for k, v in inputs.items()}
            out = spec.make_output(inputs, case, dtype).half()
            cfgs = {"wna16_moe_gemm": dict(cfg)} if cfg else port.IMPL.default_configs(port.IMPL.case_dims(case),
                                                                                       dtype)
            if cfg is None:
                assert cfgs["wna16_moe_gemm"]["block_m"] == 128, cfgs
            plan = port.IMPL.build(inputs, out, case, dtype, cfgs)
            res = check_call(plan, out, spec.reference(inputs, case, dtype), spec.tolerance(dtype))
            assert res.ok, (params, dtype, cfgs, res.reason)
            print(f"ok {case.label()} {dtype} rel={res.rel_err:.1e} {cfgs}", flush=True)


def _sm90_main() -> None:
    """The default configs of llama4-scout's decode and prefill buckets (real H, I, G; E = 2 to keep the CPU inputs
    small: the kernel specializes N, K / 2 and K / G, not E), compiled for sm_90 with Triton's bundled ptxas."""
    import torch

    from harness.spec import Case
    from ports._port import split_config
    from ports.moe import fused_moe_wna16 as port
    from tests.ports.sm90_compile import compile_for_sm90

    spec = port.IMPL.spec
    scout = {"E": 16, "top_k": 1, "H": 5120, "I": 1024, "G": 128, "tp": 8}
    for layer in ("gate_up", "down"):
        case = Case("sm90", "test", {**scout, "E": 2, "M": 256, "layer": layer})
        for dtype in spec.dtypes:
            inputs = spec.make_inputs(case, dtype, torch.device("cpu"), seed=0)
            out = spec.make_output(inputs, case, dtype)
            for m in (32, 512, 2048):
                cfgs = port.default_configs({**scout, "M": m, "layer": layer}, dtype)
                for ln in port.IMPL.launches(inputs, out, case, dtype, cfgs):
                    _, cfg = split_config(cfgs[ln.config_name], port.IMPL.host_keys)
                    res = compile_for_sm90(ln.kernel, ln.args, cfg)
                    smem = max(r.shared_bytes for r in res)
                    # the prefill buckets are sized for two programs per SM (228 KB of shared memory)
                    assert m < 512 or smem <= 114 * 1024, (layer, dtype, m, smem)
                    print(f"ok sm90 {layer} {dtype} M={m} smem={smem} {cfgs}", flush=True)


@pytest.mark.slow
def test_default_configs_compile_for_sm90() -> None:
    run_as_script(__file__, "sm90")


@pytest.mark.slow
def test_generated_triton_prefill_tiles_in_the_cpu_interpreter() -> None:
    run_in_triton_interpreter(__file__)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _sm90_main() if sys.argv[1:] == ["sm90"] else _interpret_main()
