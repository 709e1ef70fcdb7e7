"""KDA chunked prefill: fla-core 0.6.0 and SGLang 0.5.23.

fla --  `fla.ops.kda.chunk.chunk_kda` (-> chunk_kda_fwd: chunk-local cumsum of
g, `chunk_kda_fwd_intra`, WY recompute, chunk state recurrence, output), varlen with cu_seqlens,
use_qk_l2norm_in_kernel=True, output_final_state=True, g as precomputed log-decays, beta post-sigmoid.

FLA_DISABLE_BACKEND_DISPATCH=1 is set before fla imports, so neither `@dispatch` nor the FlashKDA CUTLASS
backend replaces the Triton path.  The call runs under torch.inference_mode() (serving), so autograd saves
nothing.  The launcher returns fresh (o, final_state [N, HV, K, V] fp32); both are copied into the spec's buffers
(timed copy, noted).

SGLang -- `sglang.kernels.ops.attention.fla.kda.chunk_kda`, called as its Triton KDA backend
(srt/layers/attention/linear/kernels/kda_triton.py) calls it: use_qk_l2norm_in_kernel=True, cu_seqlens =
query_start_loc (int32), the state pool `initial_state` with `initial_state_indices` (int32), g precomputed
(A_log None), beta post-sigmoid.  SGLang's pool stores states V-first [slots, HV, V, K] and the kernel
overwrites the slots it reads with the final states, so prepare builds the V-first pool once and each timed
call first restores it (one copy of B*HV*K*V fp32, noted) before launching; after the call the pool's final states
are copied transposed into the spec's final_state buffer (timed copy, noted).

The spec's named outputs are o [1, N, HV, V] and final_state [B, HV, K, V] fp32; both rows write both.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import Relayout
from upstream_adapters.attention._common import FlaImpl, SglangImpl

FLA_MOD = "fla.ops.kda.chunk"
SGL_MOD = "sglang.kernels.ops.attention.fla.kda"


class FlaKdaChunk(FlaImpl):
    kernel = "kda_chunk"
    dtypes = ("bf16", "fp16")
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FLA_MOD]
        q, k, v, g, beta = inputs["q"], inputs["k"], inputs["v"], inputs["g"], inputs["beta"]
        h0, cu, scale = inputs["initial_state"], inputs["cu_seqlens"], float(inputs["scale"])
        cu_cpu = cu.cpu()

        def fn() -> None:
            with torch.inference_mode():
                o, ht = mod.chunk_kda(q, k, v, g, beta, scale=scale, initial_state=h0, output_final_state=True,
                                      use_qk_l2norm_in_kernel=True, cu_seqlens=cu, cu_seqlens_cpu=cu_cpu)
            out["o"].copy_(o)  # fla allocates o and ht itself (no out= argument)
            out["final_state"].copy_(ht)

        notes = [*self.base_notes(), "FLA_DISABLE_BACKEND_DISPATCH=1 (Triton path, no FlashKDA); inference_mode; "
                 "chunk_size 64 (default); o and final state [N, HV, K, V] copied into the spec's buffers (timed copy)"]
        return Prepared(fn, {"config": {"chunk_size": 64}, "config_source": "fla autotune at first call",
                             "notes": "; ".join(notes)})


class SglangKdaChunk(SglangImpl):
    kernel = "kda_chunk"
    dtypes = ("bf16", "fp16")
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[SGL_MOD]
        q, k, v, g, beta = inputs["q"], inputs["k"], inputs["v"], inputs["g"], inputs["beta"]
        scale = float(inputs["scale"])
        cu = inputs["cu_seqlens"].to(torch.int32)
        rl = Relayout()
        pool_init = rl(lambda: inputs["initial_state"].transpose(-1, -2))  # [B, HV, V, K], SGLang's layout
        pool = torch.empty_like(pool_init)
        slots = torch.arange(pool.shape[0], dtype=torch.int32, device=q.device)
        # chunk_kda_fwd writes o into v's storage (chunk_gla_fwd_o_gk(..., o=v)): in serving v is a fresh
        # projection each forward; here a working copy is refreshed before each call so repeats see the same v
        v_work = v.contiguous().clone()

        def fn() -> None:
            pool.copy_(pool_init)
            v_work.copy_(v)
            o = mod.chunk_kda(q=q, k=k, v=v_work, g=g, beta=beta, scale=scale, initial_state=pool,
                              initial_state_indices=slots, use_qk_l2norm_in_kernel=True, cu_seqlens=cu)
            out["o"].copy_(o)
            out["final_state"].copy_(pool.transpose(-1, -2))  # the final states it wrote into the pool, [V, K]

        notes = [*self.base_notes(), "state pool V-first [slots, HV, V, K], restored by a timed copy before each "
                 "call (the kernel writes final states in place); v refreshed by a timed copy before each call "
                 "(the kernel writes o into v's storage); o and the pool's final states (transposed to [K, V]) copied "
                 "into the spec's buffers (timed copy)"]
        return Prepared(fn, {"config": {"chunk_size": 64}, "config_source": "launcher fixed chunk 64; "
                             "fused diagonal/recompute when B*NT*H <= 256 (its heuristic)",
                             "notes": "; ".join(notes)}, relayout=rl.refresh)


IMPLS = [FlaKdaChunk(), SglangKdaChunk()]
