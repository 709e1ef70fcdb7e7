"""Upstream SiLU-and-mul: SGLang 0.5.23 `act_and_mul_triton` (kernels/ops/moe/fused_moe_triton_kernels), the
public launcher, writing straight into the spec's buffer.  No expert filter is passed (topk_ids=None): SGLang
passes topk_ids only to skip rows routed to expert -1 under expert parallelism, which single-GPU routing never
produces.  The launcher's tile is fixed (BLOCK_SIZE 512); its `config` argument is read only for the sorted
(TMA) layout, not used here."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl

SGL_MOE = "sglang.kernels.ops.moe.fused_moe_triton_kernels"


class SglangSiluAndMul(UpstreamImpl):
    kernel = "silu_and_mul"
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    modules = (SGL_MOE,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_MOE).act_and_mul_triton
        x = inputs["x"]

        def fn() -> None:
            launcher(x, out, {}, None, None, False, "silu")

        return Prepared(fn, {"config": {"BLOCK_SIZE": 512}, "config_source": "launcher constant",
                             "notes": self.notes("public launcher act_and_mul_triton, no expert filter")})


IMPLS = [SglangSiluAndMul()]
