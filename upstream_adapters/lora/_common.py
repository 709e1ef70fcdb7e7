"""vLLM LoRA kernel metadata, built in prepare (untimed) exactly as punica's GPU wrapper builds it per step:
`LoRAKernelMeta.make(max_loras, max_num_tokens)` then `prepare_tensors(token_lora_mapping)`; the kernels get
`meta_args(T, specialize_active_lora=False)` (the LoRAConfig default: grid over max_loras + 1 adapters)."""

from __future__ import annotations

from typing import Any

import torch

VLLM_META = "vllm.lora.ops.triton_ops.lora_kernel_metadata"
VLLM_UTILS = "vllm.lora.ops.triton_ops.utils"


def vllm_meta_args(meta_mod: Any, mapping: torch.Tensor, max_loras: int) -> tuple[Any, ...]:
    meta = meta_mod.LoRAKernelMeta.make(max_loras, mapping.numel(), mapping.device)
    meta.prepare_tensors(mapping)
    return meta.meta_args(mapping.numel(), False)


def vllm_config(utils_mod: Any, op: str, max_loras: int, batch: int, hidden: int, rank: int, slices: int,
                add_inputs: bool | None = None) -> tuple[dict[str, Any], str]:
    """The config the launcher will pick (its own lookup) and where it comes from: vLLM ships no tuned LoRA
    tables; it reads VLLM_TUNED_CONFIG_FOLDER when set, else its built-in defaults."""
    cfg = utils_mod.get_lora_op_configs(op, max_loras=max_loras + 1, batch=batch, hidden_size=hidden, rank=rank,
                                        num_slices=slices, add_inputs=add_inputs)
    source = "vllm default (no VLLM_TUNED_CONFIG_FOLDER)" if not utils_mod.envs.VLLM_TUNED_CONFIG_FOLDER else \
        f"vllm tuned folder {utils_mod.envs.VLLM_TUNED_CONFIG_FOLDER}"
    return dict(cfg), source
