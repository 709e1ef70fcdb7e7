"""Upstream chunked gated delta rule (prefill): fla 0.6.0, vLLM 0.33.0's vendored copy, SGLang 0.5.23's copy.

    fla     fla.ops.gated_delta_rule.chunk.chunk_gated_delta_rule                (state [N, HV, K, V])
    vllm    vllm.third_party.flash_linear_attention.ops.chunk.chunk_gated_delta_rule   (state [N, HV, V, K];
            fla/ops moved here from vllm/model_executor/layers/fla/ops)
    sglang  sglang.kernels.ops.attention.fla.chunk.chunk_gated_delta_rule        (state pool [slots, HV, V, K] +
            indices, final state written back in place)
    gated-delta-net  NVlabs/GatedDeltaNet lit_gpt/gated_delta_rule_ops/chunk.py::chunk_gated_delta_rule (catalog
            row 20; GitHub only): head-first [B, H, T, D], one equal-length sequence per batch row, no GVA, no
            final state (its forward ignores output_final_state), T padded to 64 inside the launcher.

The spec's named outputs are o and final_state [N, HV, K, V] fp32.  fla returns both (copied in, timed); vLLM writes
o into the harness buffer (core_attn_out) and returns its [N, HV, V, K] final state (transposed copy, timed);
SGLang writes the final state into its state pool in place (copied out transposed, timed).  NVlabs' launcher never
produces a final state (ChunkGatedDeltaRuleFunction.forward passes final_state=None to its h kernel), so its row
is unavailable with that reason rather than compared on o alone.

Each is called as its serving layer calls it: varlen (B = 1, cu_seqlens), q/k already L2-normalized
(use_qk_l2norm_in_kernel=False, as vLLM's Qwen3-Next path after its fused post-conv prep), per-sequence initial
states, final states produced.  Untimed prepare: state layout translation ([K, V] -> [V, K]), chunk index
metadata (each upstream's own prepare_chunk_indices, as the serving metadata builders do it ahead of the layer).
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.linear.gated_delta_rule_chunk import CHUNK
from upstream_adapters._base import Relayout
from upstream_adapters.linear._common import UpstreamImpl

FLA_MOD = "fla.ops.gated_delta_rule.chunk"
FLA_INDEX_MOD = "fla.ops.utils.index"
VLLM_MOD = "vllm.third_party.flash_linear_attention.ops.chunk"
VLLM_INDEX_MOD = "vllm.third_party.flash_linear_attention.ops.index"
SGL_MOD = "sglang.kernels.ops.attention.fla.chunk"
NVLABS_MOD = "lit_gpt.gated_delta_rule_ops.chunk"

KERNEL = "gated_delta_rule_chunk"


def state_v_first(h0: torch.Tensor) -> torch.Tensor:
    """[N, HV, K, V] -> [N, HV, V, K] contiguous (vLLM / SGLang keep the state transposed)."""
    return h0.transpose(-1, -2).contiguous()


class FlaGDNChunk(UpstreamImpl):
    kernel = KERNEL
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD, FLA_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[FLA_MOD].chunk_gated_delta_rule
        cu = inputs["cu_seqlens"]
        cu_cpu = cu.cpu()  # fla builds its chunk metadata from the host copy when given one (no device sync)
        chunk_indices = mods[FLA_INDEX_MOD].prepare_chunk_indices(cu, CHUNK, cu_seqlens_cpu=cu_cpu)
        args: dict[str, Any] = dict(
            q=inputs["q"], k=inputs["k"], v=inputs["v"], g=inputs["g"], beta=inputs["beta"],
            scale=inputs["scale"], initial_state=inputs["h0"], output_final_state=True, cu_seqlens=cu,
            cu_seqlens_cpu=cu_cpu, chunk_indices=chunk_indices, use_qk_l2norm_in_kernel=False,
        )

        def fn() -> None:
            o, ht = launch(**args)
            out["o"].copy_(o)  # fla allocates o and ht itself; the copies into the harness buffers are timed
            out["final_state"].copy_(ht)

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "fla autotune (in-kernel)",
                             "notes": self.notes("o and final state copied into the harness buffers (fla has no "
                                                 "out= argument)")})


class VllmGDNChunk(UpstreamImpl):
    kernel = KERNEL
    provider = "vllm"
    package = "vllm"
    dtypes = ("bf16",)
    modules = (VLLM_MOD, VLLM_INDEX_MOD)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[VLLM_MOD].chunk_gated_delta_rule
        index = mods[VLLM_INDEX_MOD]
        cu = inputs["cu_seqlens"].to(torch.int32)  # vLLM passes query_start_loc (int32)
        chunk_size = getattr(mods[VLLM_MOD], "FLA_CHUNK_SIZE", CHUNK)
        rl = Relayout()
        h0 = rl(lambda: state_v_first(inputs["h0"]))
        args: dict[str, Any] = dict(
            q=inputs["q"], k=inputs["k"], v=inputs["v"], g=inputs["g"], beta=inputs["beta"],
            scale=inputs["scale"], initial_state=h0, output_final_state=True, cu_seqlens=cu,
            chunk_indices=index.prepare_chunk_indices(cu, chunk_size),
            chunk_offsets=index.prepare_chunk_offsets(cu, chunk_size),
            use_qk_l2norm_in_kernel=False, core_attn_out=out["o"],
        )

        def fn() -> None:
            _, ht = launch(**args)  # core_attn_out: vLLM writes o straight into the harness buffer
            out["final_state"].copy_(ht.transpose(-1, -2))  # [N, HV, V, K] -> the spec's [N, HV, K, V] (timed)

        return Prepared(fn, {"config": {"chunk_size": chunk_size}, "config_source": "vllm autotune (in-kernel)",
                             "notes": self.notes("initial state transposed to vLLM's [N, HV, V, K] in prepare",
                                                 "final state ([V, K]) copied transposed into the harness buffer")},
                        relayout=rl.refresh)


class SglangGDNChunk(UpstreamImpl):
    kernel = KERNEL
    provider = "sglang"
    package = "sglang"
    dtypes = ("bf16",)
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mods = self.load_modules()
        launch = mods[SGL_MOD].chunk_gated_delta_rule
        rl = Relayout()
        h0 = rl(lambda: state_v_first(inputs["h0"]))
        pool = torch.empty_like(h0)  # SGLang's state pool: read at the indices, final state written back there
        n = h0.shape[0]
        indices = torch.arange(n, dtype=torch.int32, device=h0.device)
        args: dict[str, Any] = dict(
            q=inputs["q"], k=inputs["k"], v=inputs["v"], g=inputs["g"], beta=inputs["beta"],
            scale=inputs["scale"], initial_state=pool, initial_state_indices=indices,
            cu_seqlens=inputs["cu_seqlens"], use_qk_l2norm_in_kernel=False, inplace_update=True,
        )

        def fn() -> None:
            # the in-place final-state write would change the next call's initial state: restore it (timed;
            # 2 x N*HV*K*V*4 bytes, small next to a prefill's q/k/v)
            pool.copy_(h0)
            o, _, _ = launch(**args)
            out["o"].copy_(o)
            out["final_state"].copy_(pool.transpose(-1, -2))  # final states written into the pool in place

        return Prepared(fn, {"config": {"chunk_size": CHUNK}, "config_source": "sglang autotune (in-kernel)",
                             "notes": self.notes("state pool [N, HV, V, K] restored from h0 before each call "
                                                 "(inplace_update=True as served); o and the pool's final states "
                                                 "(transposed) copied into the harness buffers (no out= "
                                                 "argument)")}, relayout=rl.refresh)


class NvlabsGDNChunk(UpstreamImpl):
    kernel = KERNEL
    provider = "gated-delta-net"
    package = "gated-delta-net"
    dtypes = ("bf16",)
    modules = (NVLABS_MOD,)  # loaded with stubbed parents: lit_gpt/__init__ pulls the whole model stack

    def case_reason(self, case: Case, dtype: str) -> str | None:
        return ("no final state: NVlabs' chunk_gated_delta_rule never writes one (its forward passes "
                "final_state=None to the h kernel whatever output_final_state says); the spec compares it")

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[NVLABS_MOD].chunk_gated_delta_rule
        n, length = inputs["h0"].shape[0], inputs["q"].shape[1]
        t, hv = length // n, inputs["v"].shape[2]
        rep = hv // inputs["q"].shape[2]

        def head_first(x: torch.Tensor, repeat: int = 1) -> torch.Tensor:
            # [1, N*T, heads, (D)] -> [N, heads * repeat, T, (D)]; the key-head repeat is how a kernel without
            # GVA serves Qwen3-Next's 2 value heads per key head
            x = x.view(n, t, *x.shape[2:])
            if repeat > 1:
                x = x.repeat_interleave(repeat, dim=2)
            return x.transpose(1, 2).contiguous()

        rl = Relayout()
        args: dict[str, Any] = dict(q=rl(lambda: head_first(inputs["q"], rep)),
                                    k=rl(lambda: head_first(inputs["k"], rep)), v=rl(lambda: head_first(inputs["v"])),
                                    beta=rl(lambda: head_first(inputs["beta"])), g=rl(lambda: head_first(inputs["g"])),
                                    BT=CHUNK, initial_state=inputs["h0"], output_final_state=False)
        out_hf = out["o"].view(n, t, hv, -1).transpose(1, 2)  # [N, HV, T, V] view of the harness buffer

        def fn() -> None:
            o, _ = launch(**args)
            out_hf.copy_(o)

        return Prepared(fn, {"config": {"BT": CHUNK}, "config_source": "NVlabs autotune (in-kernel)",
                             "notes": self.notes("head-first layout and q/k repeated to HV heads in prepare (no "
                                                 "GVA in this kernel)", "no final state (launcher never writes "
                                                 "it)", "scale fixed K^-0.5 inside", "o copied (timed)")},
                        relayout=rl.refresh)


IMPLS = [FlaGDNChunk(), VllmGDNChunk(), SglangGDNChunk(), NvlabsGDNChunk()]
