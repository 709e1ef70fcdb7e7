"""Upstream gated RMSNorm: vLLM 0.33.0 `mamba/ops/layernorm_gated` and mamba_ssm 2.3.2.post1
`ops/triton/layernorm_gated`, the same Triton kernel in two trees.

Each provider's host launcher `_layer_norm_fwd` is called with the arguments its public entry passes
(vLLM `rms_norm_gated` from MixerRMSNormGated.forward_cuda: bias None, z = gate, norm_before_gate False, one
group; mamba_ssm `rmsnorm_fn` from Mamba2's RMSNormGated: group_size = d_ssm / ngroups), plus `out=` so the
kernel writes the spec's buffer directly: the public entries only reshape and allocate that output."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl


class _RmsNormGated(UpstreamImpl):
    kernel = "rms_norm_gated"
    dtypes = ("bf16",)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(self.modules[0])._layer_norm_fwd
        x, z, w = inputs["x"], inputs["z"], inputs["weight"]
        p = case.params

        def fn() -> None:
            launcher(x, w, None, p["eps"], z=z, out=out, group_size=p["G"], norm_before_gate=False,
                     is_rms_norm=True)

        return Prepared(fn, {"config": {"group_size": p["G"]}, "config_source": "launcher heuristic",
                             "notes": self.notes("host launcher _layer_norm_fwd with out= (public entry only "
                                                 "reshapes and allocates)")})


class VllmRmsNormGated(_RmsNormGated):
    provider = "vllm"
    package = "vllm"
    modules = ("vllm.model_executor.layers.mamba.ops.layernorm_gated",)


class MambaRmsNormGated(_RmsNormGated):
    provider = "mamba_ssm"
    package = "mamba_ssm"
    modules = ("mamba_ssm.ops.triton.layernorm_gated",)


IMPLS = [VllmRmsNormGated(), MambaRmsNormGated()]
