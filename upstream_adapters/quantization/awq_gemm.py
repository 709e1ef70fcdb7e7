"""Upstream AWQ GEMM: vLLM 0.33.0 `awq_gemm_triton` (quantization/awq_triton), the public launcher called as vLLM's
AWQ linear method calls it for calls under 256 tokens: `ops.awq_gemm(x, qweight, scales, qzeros, pack_factor)`
with split_k_iters = pack_factor = 8 and the launcher's default 32 x 32 x 32 tiles (that route needs
VLLM_USE_TRITON_AWQ; the default there is the CUDA op).  The launcher sums its split-K partials and returns a new
tensor, so the timed call ends with an fp16 copy into the spec's buffer."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_AWQ = "vllm.model_executor.layers.quantization.awq_triton"
SPLIT_K = 8  # AWQConfig.pack_factor = 32 // 4, passed as split_k_iters by vLLM's AWQ linear method


class VllmAwqGemm(UpstreamImpl):
    kernel = "awq_gemm"
    provider = "vllm"
    dtypes = ("fp16",)
    package = "vllm"
    modules = (VLLM_AWQ,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_AWQ).awq_gemm_triton
        x, qw, qz, s = inputs["x"], inputs["qweight"], inputs["qzeros"], inputs["scales"]

        def fn() -> None:
            out.copy_(launcher(x, qw, s, qz, SPLIT_K))

        return Prepared(fn, {"config": {"split_k_iters": SPLIT_K, "block_size_m": 32, "block_size_n": 32,
                                        "block_size_k": 32},
                             "config_source": "vLLM AWQ linear call (pack_factor split-K) + launcher defaults",
                             "notes": self.notes("public launcher awq_gemm_triton; result copied into the "
                                                 "spec's buffer")})


IMPLS = [VllmAwqGemm()]
