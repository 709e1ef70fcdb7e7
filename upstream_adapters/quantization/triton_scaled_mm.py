"""Upstream scaled 8-bit GEMM: vLLM 0.33.0 `triton_scaled_mm` (quantization/compressed_tensors/triton_scaled_mm),
the public launcher called as vLLM's Triton ScaledMM linear kernel calls it: weight as the transposed [K, N] view
of the [N, K] checkpoint tensor, scale_a [M, 1], scale_b [N, 1], its own tile heuristic (use_heuristic=True) and
tensor-descriptor choice.  The launcher allocates C, so the timed call ends with a bf16 copy into the spec's
buffer."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.quantization.triton_scaled_mm import FP8, INT8
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_MM = "vllm.model_executor.layers.quantization.compressed_tensors.triton_scaled_mm"


class VllmTritonScaledMM(UpstreamImpl):
    kernel = "triton_scaled_mm"
    provider = "vllm"
    dtypes = (INT8, FP8)
    package = "vllm"
    modules = (VLLM_MM,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_MM).triton_scaled_mm
        a, b_t, sa, sb = inputs["A"], inputs["B"].t(), inputs["sa"], inputs["sb"]

        def fn() -> None:
            out.copy_(launcher(a, b_t, sa, sb, torch.bfloat16))

        return Prepared(fn, {"config": {"use_heuristic": True}, "config_source": "launcher tile heuristic",
                             "notes": self.notes("public launcher triton_scaled_mm, weight as transposed view "
                                                 "(B_T path); result copied into the spec's buffer")})


IMPLS = [VllmTritonScaledMM()]
