"""Upstream SGLang 0.5.23 chunked-SGMV LoRA shrink: `chunked_sgmv_lora_shrink_forward`
(kernels/ops/lora/dense/chunked_sgmv_shrink), called as ChunkedSgmvLoRABackend.run_lora_a_sgemm / run_qkv_lora /
run_gate_up_lora call it (num_slices = 1 / 3 / 2), with the csgmv backend's LoRABatchInfo built in prepare
(_sglang.py).  The launcher allocates and returns its output; rows of base-model tokens (rank-0 slot) are left
unwritten there (SGLang never reads them), so each call copies the result into the spec's buffer with
torch.where, zeroing those rows: one elementwise pass, the copy the contract needs anyway.  Split-K stays off
(SGLANG_ENABLE_LORA_CSGMV_SPLIT_K default False); tiles from get_lora_shrink_config (tuned csgmv_configs JSON
for this device if the wheel ships one, else its defaults)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.lora._common import LAYER_SLICES
from upstream_adapters.lora._sglang import CSGMV_CHUNK, SGL_TUNING, SGL_UTILS, SglangLoraImpl, clear_cached_kernel, pool

SGL_SHRINK = "sglang.kernels.ops.lora.dense.chunked_sgmv_shrink"


def csgmv_config(tuning, kind: str, k: int, r: int, slices: int) -> tuple[dict, str]:
    """The tiles the launcher will look up (same call) and where they come from."""
    get = tuning.get_lora_shrink_config if kind == "shrink" else tuning.get_lora_expand_config
    config = dict(get(K=k, R=r, num_slices=slices, chunk_size=CSGMV_CHUNK))
    tuned = tuning.get_lora_configs(kind, k, r, slices) is not None
    source = (f"sglang csgmv_configs {tuning.get_lora_config_file_name(kind, k, r, slices)}" if tuned
              else "sglang csgmv defaults (no tuned csgmv_configs JSON for this K, R, S, device)")
    return {"BLOCK_M": CSGMV_CHUNK, **config}, source


class SglangChunkedLoraShrink(SglangLoraImpl):
    kernel = "sglang_chunked_lora_shrink"
    backend = "csgmv"
    modules = (SGL_SHRINK, SGL_UTILS, SGL_TUNING)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.mod(SGL_SHRINK)
        launcher = mod.chunked_sgmv_lora_shrink_forward
        p = case.params
        slices = LAYER_SLICES[p["layer"]]
        x, weights = inputs["x"], pool(inputs["lora_a"])
        info, facts = self.batch_info(inputs, case)
        keep = (inputs["mapping"] >= 0)[:, None]
        zero = torch.zeros((), dtype=out.dtype, device=out.device)
        cleared = clear_cached_kernel(mod._chunked_lora_shrink_kernel)
        config, source = csgmv_config(self.mod(SGL_TUNING), "shrink", p["H"], p["r"], slices)

        def fn() -> None:
            y = launcher(x, weights, info, slices)
            torch.where(keep, y, zero, out=out)

        return Prepared(fn, {"config": config, "config_source": source, "notes": self.notes(
            f"chunked_sgmv_lora_shrink_forward, num_slices={slices}, csgmv LoRABatchInfo "
            f"(chunk_size {facts['chunk_size']}, {info.num_segments} segments, pool slot 0 = base model)",
            "output copied into the spec buffer with base-model rows zeroed (torch.where)",
            "CachedKernel cache cleared in prepare" if cleared else "")})


IMPLS = [SglangChunkedLoraShrink()]
