"""Upstream fused recurrent gated delta rule (decode): fla 0.6.0, vLLM 0.33.0's vendored copy, SGLang 0.5.23's.

    fla     fla.ops.gated_delta_rule.fused_recurrent.fused_recurrent_gated_delta_rule     (state [N, HV, K, V])
    vllm    vllm.third_party.flash_linear_attention.ops.fused_recurrent.fused_recurrent_gated_delta_rule
            (state [N, HV, V, K])
    sglang  sglang.kernels.ops.attention.fla.fused_recurrent.fused_recurrent_gated_delta_rule (state [N, HV, V, K])

All called varlen (B = 1, cu_seqlens 0..N, one token per sequence), q/k pre-normalized, fp32 states.  The spec's
named outputs are o and final_state [N, HV, K, V]: none of the launchers takes output buffers, so both are
copied in (timed; vLLM / SGLang's [N, HV, V, K] states transposed on the way).
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import Relayout
from upstream_adapters.linear._common import UpstreamImpl
from upstream_adapters.linear.gated_delta_rule_chunk import state_v_first

FLA_MOD = "fla.ops.gated_delta_rule.fused_recurrent"
VLLM_MOD = "vllm.third_party.flash_linear_attention.ops.fused_recurrent"
SGL_MOD = "sglang.kernels.ops.attention.fla.fused_recurrent"

KERNEL = "gated_delta_rule_recurrent"


def _common_args(inputs: Inputs) -> dict[str, Any]:
    return dict(q=inputs["q"], k=inputs["k"], v=inputs["v"], g=inputs["g"], beta=inputs["beta"],
                scale=inputs["scale"])


class FlaGDNRecurrent(UpstreamImpl):
    kernel = KERNEL
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].fused_recurrent_gated_delta_rule
        args = _common_args(inputs) | dict(initial_state=inputs["h0"], output_final_state=True,
                                           cu_seqlens=inputs["cu_seqlens"], use_qk_l2norm_in_kernel=False)

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht)

        return Prepared(fn, {"config": {}, "config_source": "fla launcher defaults",
                             "notes": self.notes("o and final state copied into the harness buffers (no out= "
                                                 "argument)")})


class VllmGDNRecurrent(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[VLLM_MOD].fused_recurrent_gated_delta_rule
        # Serving writes the new state into its cache in place (inplace_final_state=True with
        # ssm_state_indices); that would feed the next timed call a different state.  inplace_final_state=False
        # writes the same bytes to a fresh [tokens, HV, V, K] buffer (one token per sequence: one state each).
        rl = Relayout()
        args = _common_args(inputs) | dict(initial_state=rl(lambda: state_v_first(inputs["h0"])),
                                           inplace_final_state=False,
                                           cu_seqlens=inputs["cu_seqlens"].to(torch.int32),
                                           use_qk_l2norm_in_kernel=False)

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht.transpose(-1, -2))  # [N, HV, V, K] -> the spec's [N, HV, K, V]

        return Prepared(fn, {"config": {}, "config_source": "vllm launcher defaults (BV=32, num_warps=1)",
                             "notes": self.notes("inplace_final_state=False (same bytes, fresh buffer)",
                                                 "initial state transposed to [N, HV, V, K] in prepare",
                                                 "o and final state ([V, K] transposed) copied into the harness "
                                                 "buffers")}, relayout=rl.refresh)


class SglangGDNRecurrent(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    package = "sglang"
    dtypes = ("bf16",)
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[SGL_MOD].fused_recurrent_gated_delta_rule
        rl = Relayout()
        args = _common_args(inputs) | dict(initial_state=rl(lambda: state_v_first(inputs["h0"])),
                                           output_final_state=True,
                                           cu_seqlens=inputs["cu_seqlens"], use_qk_l2norm_in_kernel=False)

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(ht.transpose(-1, -2))  # [N, HV, V, K] -> the spec's [N, HV, K, V]

        return Prepared(fn, {"config": {}, "config_source": "sglang launcher defaults (BV=32, num_warps=1)",
                             "notes": self.notes("initial state transposed to [N, HV, V, K] in prepare",
                                                 "o and final state ([V, K] transposed) copied into the harness "
                                                 "buffers")}, relayout=rl.refresh)


IMPLS = [FlaGDNRecurrent(), VllmGDNRecurrent(), SglangGDNRecurrent()]
