"""Upstream block-FP8 GEMMs: vLLM 0.33.0 `w8a8_triton_block_scaled_mm` (quantization/utils/fp8_utils) and SGLang
0.5.23 `w8a8_block_fp8_matmul_triton` (kernels/ops/gemm/fp8_kernel).

Both public launchers are called as is: each looks up its own tuned JSON for (N, K, this GPU, block [128, 128])
(vLLM quantization/utils/configs/, SGLang kernels/ops/gemm/configs/) and picks the entry nearest to M; the
adapter asks the same lookup function in prepare only to record the config and its source.  Both allocate C
inside the call, so the timed call ends with a bf16 copy into the spec's output (same for both providers).
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.quantization.w8a8_block_fp8_matmul import BLOCK, FP8
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_FP8 = "vllm.model_executor.layers.quantization.utils.fp8_utils"
SGL_GEMM = "sglang.kernels.ops.gemm.fp8_kernel"
KERNEL = "w8a8_block_fp8_matmul"
DEFAULT_NOTE = "default tiles (no tuned file for this N, K, GPU)"


def _pick(configs: dict[int, Any] | None, m: int) -> dict[str, Any] | None:
    """The launchers' choice: the tuned entry whose batch key is nearest to M."""
    if not configs:
        return None
    return dict(configs[min(configs.keys(), key=lambda b: abs(b - m))])


class VllmW8A8BlockFp8Matmul(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    dtypes = (FP8,)
    package = "vllm"
    modules = (VLLM_FP8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        fp8u = self.mod(VLLM_FP8)
        a, b, a_s, b_s = inputs["A"], inputs["B"], inputs["As"], inputs["Bs"]
        n, k = b.shape
        config = _pick(fp8u.get_w8a8_block_fp8_configs(n, k, BLOCK, BLOCK), a.shape[0])
        name = f"N={n},K={k},device_name=<gpu>,dtype=fp8_w8a8,block_shape=[{BLOCK},{BLOCK}].json"
        source = f"vllm tuned: quantization/utils/configs/{name}" if config else f"vllm {DEFAULT_NOTE}"
        launcher = fp8u.w8a8_triton_block_scaled_mm

        def fn() -> None:
            out.copy_(launcher(a, b, a_s, b_s, [BLOCK, BLOCK], output_dtype=torch.bfloat16))

        return Prepared(fn, {"config": config or "launcher default", "config_source": source,
                             "notes": self.notes("public launcher w8a8_triton_block_scaled_mm; result copied "
                                                 "into the spec's buffer (launcher allocates C)")})


class SglangW8A8BlockFp8Matmul(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    dtypes = (FP8,)
    package = "sglang"
    modules = (SGL_GEMM,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        gemm = self.mod(SGL_GEMM)
        a, b, a_s, b_s = inputs["A"], inputs["B"], inputs["As"], inputs["Bs"]
        n, k = b.shape
        config = _pick(gemm.get_w8a8_block_fp8_configs(n, k, BLOCK, BLOCK), a.shape[0])
        name = f"N={n},K={k},device_name=<gpu>,dtype=fp8_w8a8,block_shape=[{BLOCK}, {BLOCK}].json"
        source = f"sglang tuned: kernels/ops/gemm/configs/{name}" if config else f"sglang {DEFAULT_NOTE}"
        launcher = gemm.w8a8_block_fp8_matmul_triton

        def fn() -> None:
            out.copy_(launcher(a, b, a_s, b_s, [BLOCK, BLOCK], output_dtype=torch.bfloat16))

        return Prepared(fn, {"config": config or "launcher default", "config_source": source,
                             "notes": self.notes("public launcher w8a8_block_fp8_matmul_triton (picks its hopper "
                                                 "split-K/swap-AB kernel when the tuned entry asks for it); "
                                                 "result copied into the spec's buffer")})


IMPLS = [VllmW8A8BlockFp8Matmul(), SglangW8A8BlockFp8Matmul()]
