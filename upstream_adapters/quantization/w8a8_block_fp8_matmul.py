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


class _BlockFp8Matmul(UpstreamImpl):
    """Both upstreams' flow: look up the tuned entry for (N, K) the way the launcher does, call the public
    launcher, copy its freshly allocated C into the spec's buffer.  Subclasses name the module, the launcher, where
    the tuned files live and how the upstream spells the block shape in their names."""

    kernel = KERNEL
    dtypes = (FP8,)
    launcher_name: str
    config_dir: str
    block_shape: str  # as in the tuned file names
    launcher_note: str

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.mod(self.modules[0])
        a, b, a_s, b_s = inputs["A"], inputs["B"], inputs["As"], inputs["Bs"]
        n, k = b.shape
        config = _pick(mod.get_w8a8_block_fp8_configs(n, k, BLOCK, BLOCK), a.shape[0])
        name = f"N={n},K={k},device_name=<gpu>,dtype=fp8_w8a8,block_shape={self.block_shape}.json"
        source = (f"{self.package} tuned: {self.config_dir}/{name}" if config
                  else f"{self.package} {DEFAULT_NOTE}")
        launcher = getattr(mod, self.launcher_name)

        def fn() -> None:
            out.copy_(launcher(a, b, a_s, b_s, [BLOCK, BLOCK], output_dtype=torch.bfloat16))

        return Prepared(fn, {"config": config or "launcher default", "config_source": source,
                             "notes": self.notes(self.launcher_note)})


class VllmW8A8BlockFp8Matmul(_BlockFp8Matmul):
    provider = package = "vllm"
    modules = (VLLM_FP8,)
    launcher_name = "w8a8_triton_block_scaled_mm"
    config_dir = "quantization/utils/configs"
    block_shape = f"[{BLOCK},{BLOCK}]"
    launcher_note = ("public launcher w8a8_triton_block_scaled_mm; result copied into the spec's buffer "
                     "(launcher allocates C)")


class SglangW8A8BlockFp8Matmul(_BlockFp8Matmul):
    provider = package = "sglang"
    modules = (SGL_GEMM,)
    launcher_name = "w8a8_block_fp8_matmul_triton"
    config_dir = "kernels/ops/gemm/configs"
    block_shape = f"[{BLOCK}, {BLOCK}]"
    launcher_note = ("public launcher w8a8_block_fp8_matmul_triton (picks its hopper split-K/swap-AB kernel when "
                     "the tuned entry asks for it); result copied into the spec's buffer")


IMPLS = [VllmW8A8BlockFp8Matmul(), SglangW8A8BlockFp8Matmul()]
