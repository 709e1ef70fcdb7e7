"""Upstream SGLang 0.5.23 QKV LoRA B: `qkv_lora_b_fwd` (kernels/ops/lora/dense/qkv_lora_b), called as
TritonLoRABackend.run_qkv_lora calls it after sgemm_lora_a_fwd: output_offset [0, N, N+Nkv, N+2Nkv] (int32, on the
device), max_qkv_out_dim = max(N, Nkv), n_slices 3, base_output = the spec's buffer, batch info from the backend's
`_sgemm_info()` (per-request segments in prefill, adapter-sorted routing in decode; _sglang.py).  The kernel adds
into base_output in place, so each call first copies base into the buffer (the contract).  Tiles are launcher
constants (BLOCK_S 16, BLOCK_OUT 64, BLOCK_R 16)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.lora._common import slice_widths
from upstream_adapters.lora._sglang import SGL_UTILS, SglangLoraImpl, pool
from upstream_adapters.lora.sglang_chunked_lora_expand import slice_offsets

SGL_QKV_B = "sglang.kernels.ops.lora.dense.qkv_lora_b"


class SglangQkvLoraB(SglangLoraImpl):
    kernel = "sglang_qkv_lora_b"
    backend = "triton"
    modules = (SGL_QKV_B, SGL_UTILS)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_QKV_B).qkv_lora_b_fwd
        widths = slice_widths(case.params)
        xa, base, weights = inputs["xa"], inputs["base"], pool(inputs["lora_b"])
        offsets, _ = slice_offsets(widths, xa.device)
        info, facts = self.batch_info(inputs, case)

        def fn() -> None:
            out.copy_(base)
            launcher(xa, weights, info, offsets, max(widths), base_output=out, n_slices=len(widths))

        return Prepared(fn, {"config": {"BLOCK_S": 16, "BLOCK_OUT": 64, "BLOCK_R": 16},
                             "config_source": "launcher constants", "notes": self.notes(
            f"qkv_lora_b_fwd, slices {widths}, triton-backend LoRABatchInfo ({facts['routing']}, "
            f"{info.num_segments} segments, pool slot 0 = base model)", "adds in place after copying base (contract)")})


IMPLS = [SglangQkvLoraB()]
