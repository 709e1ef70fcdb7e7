"""Upstream SGLang 0.5.23 gate/up LoRA B: `gate_up_lora_b_fwd` (kernels/ops/lora/dense/gate_up_lora_b), called as
TritonLoRABackend.run_gate_up_lora calls it after sgemm_lora_a_fwd: output_dim = B.shape[-2] // 2, base_output =
the spec's buffer, batch info from the backend's `_sgemm_info()` (per-request segments in prefill,
adapter-sorted routing in decode; _sglang.py).  The kernel adds into base_output in place, so each call first
copies base into the buffer (the contract).  Tiles are launcher constants (BLOCK_S 16, BLOCK_OUT 64, BLOCK_R 16)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.lora._sglang import SGL_UTILS, SglangLoraImpl, pool

SGL_GATE_UP_B = "sglang.kernels.ops.lora.dense.gate_up_lora_b"


class SglangGateUpLoraB(SglangLoraImpl):
    kernel = "sglang_gate_up_lora_b"
    backend = "triton"
    modules = (SGL_GATE_UP_B, SGL_UTILS)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_GATE_UP_B).gate_up_lora_b_fwd
        xa, base, weights = inputs["xa"], inputs["base"], pool(inputs["lora_b"])
        output_dim = weights.shape[-2] // 2
        info, facts = self.batch_info(inputs, case)

        def fn() -> None:
            out.copy_(base)
            launcher(xa, weights, info, output_dim, base_output=out)

        return Prepared(fn, {"config": {"BLOCK_S": 16, "BLOCK_OUT": 64, "BLOCK_R": 16},
                             "config_source": "launcher constants", "notes": self.notes(
            f"gate_up_lora_b_fwd, output_dim {output_dim}, triton-backend LoRABatchInfo ({facts['routing']}, "
            f"{info.num_segments} segments, pool slot 0 = base model)", "adds in place after copying base (contract)")})


IMPLS = [SglangGateUpLoraB()]
