"""Upstream multi-LoRA shrink: vLLM 0.33.0 `_lora_shrink` (lora/ops/triton_ops/lora_shrink_op), the function
behind `torch.ops.vllm.lora_shrink`, called as punica's `add_shrink` calls it (one lora_a tensor [L, r, H] per
slice, the fp32 output buffer, metadata from LoRAKernelMeta built in prepare).  It zeroes the buffer and
launches the kernel with its own config lookup.  SGLang's shrinks have their own specs
(harness/specs/lora/_sglang.py) and adapters (sglang_*.py beside this file)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.lora._common import VLLM_META, VLLM_UTILS, vllm_config, vllm_meta_args
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_SHRINK = "vllm.lora.ops.triton_ops.lora_shrink_op"


class VllmLoraShrink(UpstreamImpl):
    kernel = "lora_shrink"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_SHRINK, VLLM_META, VLLM_UTILS)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self._load()
        shrink = mods[VLLM_SHRINK]._lora_shrink
        p = case.params
        x, scale = inputs["x"], inputs["scale"]
        weights = [inputs["lora_a"][s].contiguous() for s in range(p["S"])]
        meta = vllm_meta_args(mods[VLLM_META], inputs["mapping"], p["L"])
        config, source = vllm_config(mods[VLLM_UTILS], "shrink", p["L"], p["T"], p["H"], p["r"], p["S"])

        def fn() -> None:
            shrink(x, weights, out, *meta, scale)

        return Prepared(fn, {"config": config, "config_source": source,
                             "notes": self.notes("_lora_shrink (the torch.ops.vllm.lora_shrink body), "
                                                 "specialize_active_lora=False")})


IMPLS = [VllmLoraShrink()]
