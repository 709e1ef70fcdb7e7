"""The split-K path of the LoRA shrink ports (decode batches on a long H), which the specs' small test cases do
not reach: interpret mode, through the harness checker, with the inputs rewritten after prepare."""

from __future__ import annotations

import importlib

import pytest
import torch

from harness.correctness import check_call
from harness.spec import Case
from harness.worker import rewrite_inputs

CPU = torch.device("cpu")
CASES = [
    ("ports.lora.lora_shrink", {"T": 5, "H": 2000, "N": 96, "r": 16, "L": 3, "S": 2}),
    ("ports.lora.sglang_sgemm_lora_a", {"layer": "qkv", "T": 7, "H": 1500, "N": 96, "Nkv": 40, "r": 16, "L": 4}),
]


@pytest.mark.parametrize(("module", "params"), CASES, ids=[c[0].rsplit(".", 1)[1] for c in CASES])
def test_split_k_shrink(module: str, params: dict) -> None:
    impl = importlib.import_module(module).IMPL
    spec = impl.spec
    case = Case("test", "test", params)
    cfgs = impl.default_configs(impl.case_dims(case), "bf16")
    assert "lora_shrink_split_kernel" in cfgs and cfgs["lora_shrink_split_kernel"]["split_k"] > 1
    inputs = spec.make_inputs(case, "bf16", CPU, seed=5)
    out = spec.make_output(inputs, case, "bf16")
    prepared = impl.prepare(inputs, out, case, "bf16")
    tol = spec.tolerance("bf16")
    res = check_call(prepared.fn, out, spec.reference(inputs, case, "bf16"), tol)
    assert res.ok, res.reason
    rewrite_inputs(spec, inputs, case, "bf16", CPU, seed=6)
    res = check_call(prepared.fn, out, spec.reference(inputs, case, "bf16"), tol)
    assert res.ok, res.reason
