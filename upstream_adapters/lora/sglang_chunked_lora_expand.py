"""Upstream SGLang 0.5.23 chunked-SGMV LoRA expand: `chunked_sgmv_lora_expand_forward`
(kernels/ops/lora/dense/chunked_sgmv_expand), called as ChunkedSgmvLoRABackend.run_lora_b_sgemm / run_qkv_lora /
run_gate_up_lora call it: slice_offsets on the device plus slice_offsets_cpu (the layer's output_offset_cpu,
which selects the kernel's flattened ragged-slice grid), max_slice_size = the widest slice, base_output = the
spec's buffer, with the csgmv backend's LoRABatchInfo built in prepare (_sglang.py).  The kernel adds the scaled
delta into base_output in place, so each call first copies base into the buffer (the contract, as lora_expand's
adapters do).  Tiles from get_lora_expand_config (tuned csgmv_configs JSON if shipped, else its defaults)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.lora._common import slice_widths
from upstream_adapters.lora._sglang import SGL_TUNING, SGL_UTILS, SglangLoraImpl, clear_cached_kernel, pool
from upstream_adapters.lora.sglang_chunked_lora_shrink import csgmv_config

SGL_EXPAND = "sglang.kernels.ops.lora.dense.chunked_sgmv_expand"


def slice_offsets(widths: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output_offset (int32, device) and output_offset_cpu: [0, N_0, N_0 + N_1, ...]."""
    offsets = [0]
    for n in widths:
        offsets.append(offsets[-1] + n)
    cpu = torch.tensor(offsets, dtype=torch.int32)
    return cpu.to(device), cpu


class SglangChunkedLoraExpand(SglangLoraImpl):
    kernel = "sglang_chunked_lora_expand"
    backend = "csgmv"
    modules = (SGL_EXPAND, SGL_UTILS, SGL_TUNING)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.mod(SGL_EXPAND)
        launcher = mod.chunked_sgmv_lora_expand_forward
        widths = slice_widths(case.params)
        xa, base, weights = inputs["xa"], inputs["base"], pool(inputs["lora_b"])
        offsets, offsets_cpu = slice_offsets(widths, xa.device)
        info, facts = self.batch_info(inputs, case)
        cleared = clear_cached_kernel(mod._chunked_lora_expand_kernel)
        config, source = csgmv_config(self.mod(SGL_TUNING), "expand", sum(widths), case.params["r"], len(widths))

        def fn() -> None:
            out.copy_(base)
            launcher(x=xa, weights=weights, batch_info=info, slice_offsets=offsets, max_slice_size=max(widths),
                     base_output=out, slice_offsets_cpu=offsets_cpu)

        return Prepared(fn, {"config": config, "config_source": source, "notes": self.notes(
            f"chunked_sgmv_lora_expand_forward, {len(widths)} slice(s) {widths}, csgmv LoRABatchInfo "
            f"(chunk_size {facts['chunk_size']}, {info.num_segments} segments, pool slot 0 = base model)",
            "adds in place after copying base (contract)",
            "CachedKernel cache cleared in prepare" if cleared else "")})


IMPLS = [SglangChunkedLoraExpand()]
