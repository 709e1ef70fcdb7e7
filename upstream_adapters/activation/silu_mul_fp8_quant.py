"""Upstream fused SiLU-and-mul + fp8 group quant: vLLM 0.33.0 `silu_mul_per_token_group_quant_fp8_colmajor`
(quantization/utils/fp8_utils), the public Triton launcher, called as vLLM's DeepGEMM MoE experts call it
without expert endpoints (dense [R, 2N] rows), use_ue8m0=False (DeepGEMM's e8m0 scales are a Blackwell recipe;
`is_deep_gemm_e8m0_used()` is False on H100).  q goes into a buffer allocated once; the launcher allocates its
column-major scales per call.  The timed call ends with the contract's torch dequant epilogue."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.quantization._common import dequantize_groups_into
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_FP8 = "vllm.model_executor.layers.quantization.utils.fp8_utils"


class VllmSiluMulFp8Quant(UpstreamImpl):
    kernel = "silu_mul_fp8_quant"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_FP8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_FP8).silu_mul_per_token_group_quant_fp8_colmajor
        x, group = inputs["x"], case.params["G"]
        q = torch.empty(out.shape, dtype=torch.float8_e4m3fn, device=x.device)

        def fn() -> None:
            _, s = launcher(x, q, False, 1e-10, None, group)
            dequantize_groups_into(out, q, s, group)

        return Prepared(fn, {"config": {"BLOCK_M": 8, "BLOCK_N": group}, "config_source": "launcher constants",
                             "notes": self.notes("public launcher silu_mul_per_token_group_quant_fp8_colmajor, "
                                                 "use_ue8m0=False, no expert endpoints",
                                                 "timed call includes the contract's torch dequant epilogue")})


IMPLS = [VllmSiluMulFp8Quant()]
