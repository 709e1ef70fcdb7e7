"""Upstream SGLang 0.5.23 segmented-GEMM LoRA A: `sgemm_lora_a_fwd` (kernels/ops/lora/dense/sgemm_lora_a), called as
TritonLoRABackend.run_lora_a_sgemm / run_qkv_lora / run_gate_up_lora call it (stack_num = 1 / 3 / 2) with the
batch info its `_sgemm_info()` hands the kernels: per-request segments in prefill, the adapter-sorted routing in
decode (_sglang.py).  The launcher allocates and returns its output with base-model rows unwritten; each call
copies it into the spec's buffer with torch.where, zeroing those rows (the contract's copy).  Tiles are launcher
constants (BLOCK_S 16, BLOCK_K 256, BLOCK_R 16)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.lora._common import LAYER_SLICES
from upstream_adapters.lora._sglang import SGL_UTILS, SglangLoraImpl, pool

SGL_LORA_A = "sglang.kernels.ops.lora.dense.sgemm_lora_a"


class SglangSgemmLoraA(SglangLoraImpl):
    kernel = "sglang_sgemm_lora_a"
    backend = "triton"
    modules = (SGL_LORA_A, SGL_UTILS)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_LORA_A).sgemm_lora_a_fwd
        slices = LAYER_SLICES[case.params["layer"]]
        x, weights = inputs["x"], pool(inputs["lora_a"])
        info, facts = self.batch_info(inputs, case)
        keep = (inputs["mapping"] >= 0)[:, None]
        zero = torch.zeros((), dtype=out.dtype, device=out.device)

        def fn() -> None:
            y = launcher(x, weights, info, stack_num=slices)
            torch.where(keep, y, zero, out=out)

        return Prepared(fn, {"config": {"BLOCK_S": 16, "BLOCK_K": 256, "BLOCK_R": 16},
                             "config_source": "launcher constants", "notes": self.notes(
            f"sgemm_lora_a_fwd, stack_num={slices}, triton-backend LoRABatchInfo ({facts['routing']}, "
            f"{info.num_segments} segments, pool slot 0 = base model)",
            "output copied into the spec buffer with base-model rows zeroed (torch.where)")})


IMPLS = [SglangSgemmLoraA()]
