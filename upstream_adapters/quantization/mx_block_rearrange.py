"""Upstream MX block-scale swizzle: vLLM 0.33.0 `triton_mx_block_rearrange` (quantization/qutlass_utils.py), the
public launcher (a torch custom op wrapping `triton_scale_swizzle` with wrap_triton) that `to_blocked(...,
backend="triton")` calls.  It allocates its [PR, PC] output per call; the result is copied into the spec's buffer
inside the call.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

VLLM_QUTLASS = "vllm.model_executor.layers.quantization.qutlass_utils"


class VllmMxBlockRearrange(UpstreamImpl):
    kernel = "mx_block_rearrange"
    provider = "vllm"
    dtypes = ("uint8",)
    package = "vllm"
    modules = (VLLM_QUTLASS,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_QUTLASS).triton_mx_block_rearrange
        s = inputs["scales"]

        def fn() -> None:
            out.copy_(launcher(s))

        return Prepared(fn, {"config": {"BLOCK_ROWS": 128, "BLOCK_COLS": 4}, "config_source": "launcher constants",
                             "notes": self.notes("public launcher triton_mx_block_rearrange (custom op; allocates "
                                                 "its output): copied into out in the call")})


IMPLS = [VllmMxBlockRearrange()]
