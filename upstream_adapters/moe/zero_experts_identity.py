"""Upstream zero-expert identity: vLLM 0.33.0 `zero_experts_compute_triton` (fused_moe/fused_moe.py), the public
launcher of `compute_identity_kernel`, called as ZeroExpertRouter._compute_routing calls it: with clones of
topk_ids / topk_weights (the launcher masks them in place), num_experts = the routed (non-zero) expert count,
zero_expert_type "identity".  The clones and the launcher's own mask / zeros_like set-up are in the timed call, as
in production; the launcher returns a new tensor, copied into the spec's buffer inside the call.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

VLLM_MOD = "vllm.model_executor.layers.fused_moe.fused_moe"


class VllmZeroExpertsIdentity(UpstreamImpl):
    kernel = "zero_experts_identity"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_MOD).zero_experts_compute_triton
        x, ids, w = inputs["hidden_states"], inputs["topk_ids"], inputs["topk_weights"]
        e = case.params["E"]

        def fn() -> None:
            res = launcher(expert_indices=ids.clone(), expert_scales=w.clone(), num_experts=e,
                           zero_expert_type="identity", hidden_states=x)
            out.copy_(res)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 256}, "config_source": "launcher constant",
                             "notes": self.notes("public launcher zero_experts_compute_triton, inputs cloned as "
                                                 "ZeroExpertRouter does (it masks them in place)",
                                                 "returns a new tensor: copied into out in the call")})


IMPLS = [VllmZeroExpertsIdentity()]
