"""The KDA gate contract: reference vs scalar math and vs fla's own torch `naive_kda_gate`, domains, counts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.attention.kda_gate import SPEC

CPU = torch.device("cpu")


def test_reference_matches_scalar_math():
    for case in SPEC.test_cases():
        inp = SPEC.make_inputs(case, "bf16", CPU, seed=3)
        ref = SPEC.reference(inp, case, "bf16")
        t_n, h_n, k_n = inp["g"].shape
        for t in range(t_n):
            for h in range(h_n):
                for k in range(k_n):
                    x = float(inp["g"][t, h, k]) + float(inp["dt_bias"][h * k_n + k])
                    want = -math.exp(float(inp["A_log"][h])) * math.log1p(math.exp(x))
                    assert abs(float(ref[t, h, k]) - want) <= 1e-5 * max(1.0, abs(want))


_FLA_NAIVE = """
import json, os, sys
sys.path.insert(0, {root!r})
os.environ["FLA_DISABLE_BACKEND_DISPATCH"] = "1"
import torch
from upstream_adapters._loader import load
from harness.specs.attention.kda_gate import SPEC
up = load("fla")
if up.unavailable:
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
naive = up.import_module("fla.ops.kda.gate", stub_missing=True).naive_kda_gate
case = SPEC.check_cases()[0]
inp = SPEC.make_inputs(case, "bf16", torch.device("cpu"), 4)
want = naive(inp["g"], inp["A_log"], inp["dt_bias"], output_dtype=torch.float32)
got = SPEC.reference(inp, case, "bf16")
print(json.dumps({{"max_err": (got - want).abs().max().item(), "scale": want.abs().max().item()}}))
"""


def test_reference_matches_fla_naive_gate():
    """fla's own torch reference agrees with the spec's (run in a subprocess: importing fla must not leak)."""
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", _FLA_NAIVE.format(root=root)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        pytest.skip(f"fla cache absent: {result['unavailable'][:120]}")
    assert result["max_err"] <= 1e-5 * max(1.0, result["scale"])


def test_inputs_in_kimi_domains_and_seeded():
    case = SPEC.check_cases()[0]
    a = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    b = SPEC.make_inputs(case, "bf16", CPU, seed=1)
    assert torch.equal(a["g"], b["g"]) and a["g"].abs().sum() > 0
    assert (a["A_log"] >= 0).all() and (a["A_log"] <= math.log(16.0) + 1e-6).all()
    dt = torch.nn.functional.softplus(a["dt_bias"])
    assert (dt > 0.9e-3).all() and (dt < 0.11).all()
    assert (SPEC.reference(a, case, "bf16") < 0).all()  # a decay in log space


def test_tolerance_rejects_planted_bugs():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp16", CPU, seed=5)
    ref = SPEC.reference(inp, case, "fp16")
    tol = SPEC.tolerance("fp16")
    assert compare(ref.clone(), ref, tol).ok
    # dt_bias indexed per key channel in the wrong order (K-major instead of H-major)
    h, k = inp["g"].shape[1:]
    wrong = inp | {"dt_bias": inp["dt_bias"].view(h, k).t().reshape(-1)}
    assert not compare(SPEC.reference(wrong, case, "fp16"), ref, tol).ok
    # exp(A_log) dropped
    assert not compare(SPEC.reference(inp | {"A_log": torch.zeros_like(inp["A_log"])}, case, "fp16"), ref, tol).ok


def test_cases_from_model_yaml():
    kimi = load_model("kimi-linear-48b-a3b")
    cases = SPEC.cases(kimi)
    assert cases and cases[0].params["H"] == 32 // kimi.tp and cases[0].params["K"] == 128
    assert SPEC.cases(load_model("qwen3-235b-a22b")) == []


def test_flop_and_byte_counts():
    c = Case("x", "decode", {"T": 2, "H": 3, "K": 4})
    assert SPEC.flops(c) == 5 * 24
    assert SPEC.bytes(c, "bf16") == 24 * 6 + 12 + 48
