"""Upstream per-token INT8 quantization: vLLM 0.33.0 `per_token_quant_int8` (int8_utils), a pure-Triton launcher
called as is (it allocates q [T, H] int8 and s [T, 1] fp32 per call, as in production).  With current_platform
pinned to CUDA the module's `round_int8` is the CUDA libdevice.round variant."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.quantization._common import dequantize_groups_into
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_INT8 = "vllm.model_executor.layers.quantization.utils.int8_utils"


class VllmPerTokenQuantInt8(UpstreamImpl):
    kernel = "per_token_quant_int8"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_INT8,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_INT8).per_token_quant_int8
        x = inputs["x"]
        h = x.shape[1]

        def fn() -> None:
            xq, xs = launcher(x)
            dequantize_groups_into(out, xq, xs, h)

        info = {"config": {}, "config_source": "launcher heuristic (per_token_quant_int8)",
                "notes": self.notes("public Triton launcher per_token_quant_int8",
                                    "timed call includes the contract's torch dequant epilogue")}
        return Prepared(fn, info)


IMPLS = [VllmPerTokenQuantInt8()]
