"""Upstream multi-LoRA expand: vLLM 0.33.0 `_lora_expand` (lora/ops/triton_ops/lora_expand_op), the function
behind `torch.ops.vllm.lora_expand`, called as punica's `add_expand` calls it (add_inputs=True, offset_start 0,
one lora_b tensor [L, N, r] per slice, metadata from LoRAKernelMeta built in prepare).  Each call first copies
the base output into the spec's buffer (the contract: the kernel adds in place).  SGLang's expands have their own
specs (harness/specs/lora/_sglang.py) and adapters (sglang_*.py beside this file)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.lora._common import VLLM_META, VLLM_UTILS, vllm_config, vllm_meta_args
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_EXPAND = "vllm.lora.ops.triton_ops.lora_expand_op"


class VllmLoraExpand(UpstreamImpl):
    kernel = "lora_expand"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_EXPAND, VLLM_META, VLLM_UTILS)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mods = self._load()
        expand = mods[VLLM_EXPAND]._lora_expand
        p = case.params
        buf, base = inputs["buf"], inputs["base"]
        weights = [inputs["lora_b"][s].contiguous() for s in range(p["S"])]
        meta = vllm_meta_args(mods[VLLM_META], inputs["mapping"], p["L"])
        config, source = vllm_config(mods[VLLM_UTILS], "expand", p["L"], p["T"], p["N"], p["r"], p["S"], True)

        def fn() -> None:
            out.copy_(base)
            expand(buf, weights, out, *meta, offset_start=0, add_inputs=True)

        return Prepared(fn, {"config": config, "config_source": source,
                             "notes": self.notes("_lora_expand (the torch.ops.vllm.lora_expand body), "
                                                 "add_inputs=True after copying base (contract)")})


IMPLS = [VllmLoraExpand()]
