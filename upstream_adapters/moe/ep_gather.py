"""Upstream EP unpermute + reduce: vLLM 0.33.0 `ep_gather` (fused_moe/deep_gemm_utils), the public Triton
launcher, called as `deepgemm_unpermute_and_reduce` calls it (expert_map given, output = the spec's buffer); and
SGLang 0.5.23 `moe_unpermute` (kernels/ops/moe/ep_moe_kernels, DeepEP post-reorder), whose layout marks remote
slots with src2dst = -1: the adapter builds src2dst = inv_perm where the slot's expert is local, else -1, in
prepare (untimed), and passes the spec's buffer as `outputs`."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_DG = "vllm.model_executor.layers.fused_moe.deep_gemm_utils"
SGL_EP = "sglang.kernels.ops.moe.ep_moe_kernels"


class VllmEpGather(UpstreamImpl):
    kernel = "ep_gather"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_DG,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_DG).ep_gather
        a, ids, w, inv, emap = (inputs[k] for k in ("a", "topk_ids", "topk_weights", "inv_perm", "expert_map"))

        def fn() -> None:
            launcher(a, ids, w, inv, emap, out)

        return Prepared(fn, {"config": {"num_warps": 2}, "config_source": "launcher constants",
                             "notes": self.notes("public launcher ep_gather with expert_map (EP over 2 ranks)")})


class SglangMoeUnpermute(UpstreamImpl):
    kernel = "ep_gather"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_EP,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_EP).moe_unpermute
        a, ids, w = inputs["a"], inputs["topk_ids"], inputs["topk_weights"]
        local = inputs["expert_map"][ids.long()] >= 0
        src2dst = torch.where(local, inputs["inv_perm"].long(), torch.full_like(ids, -1, dtype=torch.int64))
        src2dst = src2dst.contiguous()

        def fn() -> None:
            launcher(a, src2dst, ids, w, None, out)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 512}, "config_source": "launcher constant",
                             "notes": self.notes("moe_unpermute (deepep_post_reorder_triton_kernel); remote "
                                                 "slots as src2dst = -1, built in prepare")})


IMPLS = [VllmEpGather(), SglangMoeUnpermute()]
