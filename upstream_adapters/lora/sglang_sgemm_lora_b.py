"""Upstream SGLang 0.5.23 segmented-GEMM LoRA B: `sgemm_lora_b_fwd` (kernels/ops/lora/dense/sgemm_lora_b), called as
TritonLoRABackend.run_lora_b_sgemm calls it: base_output = the spec's buffer, batch info from the backend's
`_sgemm_info()` (per-request segments in prefill, adapter-sorted routing in decode; _sglang.py).  The kernel adds
the scaled delta into base_output in place, so each call first copies base into the buffer (the contract).  Tiles
are launcher constants (BLOCK_S 16, BLOCK_N 256, BLOCK_R 16)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.lora._sglang import SGL_UTILS, SglangLoraImpl, pool

SGL_LORA_B = "sglang.kernels.ops.lora.dense.sgemm_lora_b"


class SglangSgemmLoraB(SglangLoraImpl):
    kernel = "sglang_sgemm_lora_b"
    backend = "triton"
    modules = (SGL_LORA_B, SGL_UTILS)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_LORA_B).sgemm_lora_b_fwd
        xa, base, weights = inputs["xa"], inputs["base"], pool(inputs["lora_b"])
        info, facts = self.batch_info(inputs, case)

        def fn() -> None:
            out.copy_(base)
            launcher(xa, weights, info, base_output=out)

        return Prepared(fn, {"config": {"BLOCK_S": 16, "BLOCK_N": 256, "BLOCK_R": 16},
                             "config_source": "launcher constants", "notes": self.notes(
            f"sgemm_lora_b_fwd, triton-backend LoRABatchInfo ({facts['routing']}, {info.num_segments} segments, "
            "pool slot 0 = base model)", "adds in place after copying base (contract)")})


IMPLS = [SglangSgemmLoraB()]
