"""Upstream MoE permute: SGLang 0.5.23 `moe_permute` (kernels/ops/moe/ep_moe_kernels.py).  The public launcher
runs two steps: `moe_permute_prepare` (src2dst + expert offsets from topk_ids: a JIT-compiled CUDA op through
tvm_ffi, not loadable here and not Triton) and `_moe_permute_rows`, which launches the Triton
`deepep_permute_triton_kernel`.  The adapter calls `_moe_permute_rows(inputs, topk_ids, src2dst, outputs)` with
the spec's src2dst and the spec's buffer as `outputs` (BLOCK_SIZE 512, the launcher's constant).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

SGL_EP = "sglang.kernels.ops.moe.ep_moe_kernels"


class SglangMoePermute(UpstreamImpl):
    kernel = "moe_permute"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_EP,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        rows = self.mod(SGL_EP)._moe_permute_rows
        x, ids, src2dst = inputs["x"], inputs["topk_ids"], inputs["src2dst"]

        def fn() -> None:
            rows(x, ids, src2dst, out)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 512}, "config_source": "launcher constant",
                             "notes": self.notes("moe_permute's Triton step _moe_permute_rows "
                                                 "(deepep_permute_triton_kernel); its moe_permute_prepare step is a "
                                                 "JIT CUDA op (not loadable): src2dst is the spec's input")})


IMPLS = [SglangMoePermute()]
