"""Upstream NSA compressed-branch attention, forward: XunhaoLai/native-sparse-attention-triton
native_sparse_attention/ops/triton/compressed_attention.py::compressed_attention (catalog row 32).

Called as its NSA module calls it (packed q [N, Hq, D], compressed k/v [Nc, Hkv, D], cu_seqlens_q / cu_seqlens_k,
kernel_size / kernel_stride), except topk=0: the spec checks the attention output (forward_kernel) only, and
topk=0 is the launcher's own switch that skips the block ranking (score_kernel, transform_score, torch.topk).
max_seqlen_q / max_seqlen_k are passed (computed in prepare), so the call has no host sync.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import triton

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

KERNEL = "nsa_compressed_attention"
NSA_TRITON_MOD = "native_sparse_attention.ops.triton.compressed_attention"


class NsaTritonCompressed(UpstreamImpl):
    kernel = KERNEL
    provider = "nsa-triton"
    package = "nsa-triton"
    dtypes = ("bf16",)
    modules = (NSA_TRITON_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[NSA_TRITON_MOD]
        launch = mod.compressed_attention
        # topk=0 warns "returned topk_idx will be None" on every call; expected here
        warnings.filterwarnings("ignore", message="topk <= 0", module="native_sparse_attention")
        d = inputs["q"].shape[-1]
        args: dict[str, Any] = dict(
            q=inputs["q"], k=inputs["k"], v=inputs["v"], kernel_size=inputs["kernel_size"],
            kernel_stride=inputs["kernel_stride"], block_size=64, topk=0, cu_seqlens_q=inputs["cu_seqlens_q"],
            cu_seqlens_k=inputs["cu_seqlens_k"], max_seqlen_q=inputs["max_seqlen_q"],
            max_seqlen_k=inputs["max_seqlen_k"], sm_scale=inputs["scale"],
        )

        def fn() -> None:
            o, _ = launch(**args)
            out.copy_(o)

        warps, stages = mod.get_num_warps_stages(d, 128, mod.IS_HOPPER_GPU)
        config = {"BLOCK_SIZE_Q": 128, "BLOCK_SIZE_K": 128, "BLOCK_SIZE_D": triton.next_power_of_2(d),
                  "num_warps": warps, "num_stages": stages}
        return Prepared(fn, {"config": config, "config_source": "launcher fixed tiles + utils.get_num_warps_stages",
                             "notes": self.notes("topk=0: block ranking for the selection branch skipped",
                                                 "o copied into the harness buffer (no out= argument)")})


IMPLS = [NsaTritonCompressed()]
