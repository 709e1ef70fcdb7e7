"""Upstream AWQ dequantization: vLLM 0.33.0 and SGLang 0.5.23 `awq_dequantize_triton` (quantization/awq_triton),
public Triton launchers called as is with their default 32 x 32 tiles (what vLLM's `ops.awq_dequantize` passes
when VLLM_USE_TRITON_AWQ is set, and what SGLang's AWQ paths call).  The launcher allocates the result, so the
timed call ends with an fp16 copy into the spec's buffer (same for both providers)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl

KERNEL = "awq_dequantize"


class _AwqDequantize(UpstreamImpl):
    kernel = KERNEL
    dtypes = ("fp16",)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(self.modules[0]).awq_dequantize_triton
        qw, qz, s = inputs["qweight"], inputs["qzeros"], inputs["scales"]

        def fn() -> None:
            out.copy_(launcher(qw, s, qz))

        return Prepared(fn, {"config": {"block_size_x": 32, "block_size_y": 32},
                             "config_source": "launcher default",
                             "notes": self.notes("public launcher awq_dequantize_triton; result copied into the "
                                                 "spec's buffer (launcher allocates it)")})


class VllmAwqDequantize(_AwqDequantize):
    provider = "vllm"
    package = "vllm"
    modules = ("vllm.model_executor.layers.quantization.awq_triton",)


class SglangAwqDequantize(_AwqDequantize):
    provider = "sglang"
    package = "sglang"
    modules = ("sglang.kernels.ops.quantization.awq_triton",)


IMPLS = [VllmAwqDequantize(), SglangAwqDequantize()]
