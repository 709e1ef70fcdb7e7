"""Two-state attention merge: vLLM 0.33.0 `triton_merge_attn_states.merge_attn_states`, FlashInfer 0.7.2.post1
`flashinfer.triton.cascade.merge_state` and SGLang 0.5.23 `kernels.ops.attention.merge_state.merge_state_triton`
(the Triton merge its FlashInfer backend and srt merge_state fall back to).

Layout translation (untimed, in prepare): vLLM takes LSEs [H, T] (natural log) -> a contiguous transpose;
FlashInfer's Triton cascade kernels use base-2 LSEs [T, H] -> lse * log2(e).
FlashInfer's launcher allocates and returns (v_merged, s_merged); the adapter copies v_merged into the
output buffer, and that copy (one extra read + write of the output) is inside the timed call (noted).
FlashInfer's row is timed with events, not a CUDA graph, because of the launcher itself: it allocates
`s_merged = torch.empty((seq_len, num_heads)).to(s_a.device)`, a host tensor copied to the GPU (pageable
H2D) on every call, which graph capture rejects ("Cannot copy between CPU and CUDA tensors during CUDA graph
capture unless the CPU tensor is pinned"); that copy is in its timed call.  Its kernel is scalar as well: grid
(T,), each program a serial `for tx in range(D): for head in range(H)` loop of four one-element loads (both
LSEs re-loaded per element), so it is latency-bound (see merge_states.py).  FlashInfer's own wrappers call the
CUDA `flashinfer.cascade.merge_state`; the Triton port is the catalog's row 15.
SGLang takes the spec's layout as is (natural-log LSE [T, H]) and writes into the bench buffer; it is called
with a preallocated output_lse, as its callers get one back (OUTPUT_LSE on).
vLLM's `vllm.v1.attention.ops.merge_attn_states` dispatcher would pick a CUDA op; the Triton module is called.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.attention._common import LOG2E
from upstream_adapters.attention._common import FlashinferImpl, SglangImpl, VllmImpl

VLLM_MOD = "vllm.v1.attention.ops.triton_merge_attn_states"
FI_MOD = "flashinfer.triton.cascade"
SGL_MOD = "sglang.kernels.ops.attention.merge_state"


class VllmMergeAttnStates(VllmImpl):
    kernel = "merge_attn_states"
    dtypes = ("bf16", "fp16")
    modules = (VLLM_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[VLLM_MOD]
        va, vb = inputs["v_a"], inputs["v_b"]
        lse_a = inputs["lse_a"].t().contiguous()  # vLLM: [NUM_HEADS, NUM_TOKENS], as its attention hands it over
        lse_b = inputs["lse_b"].t().contiguous()

        def relayout() -> None:
            lse_a.copy_(inputs["lse_a"].t())
            lse_b.copy_(inputs["lse_b"].t())

        def fn() -> None:
            mod.merge_attn_states(output=out, prefix_output=va, prefix_lse=lse_a, suffix_output=vb,
                                  suffix_lse=lse_b, output_lse=None)

        notes = [*self.base_notes(), "launcher merge_attn_states (Triton), output_lse=None"]
        return Prepared(fn, {"config": {"grid": "(T, H)", "PADDED_HEAD_SIZE": "next_pow2(D)"},
                             "config_source": "launcher fixed (no tuning table)", "notes": "; ".join(notes)},
                        relayout=relayout)


class FlashinferMergeState(FlashinferImpl):
    kernel = "merge_attn_states"
    dtypes = ("bf16", "fp16")
    modules = (FI_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FI_MOD]
        va, vb = inputs["v_a"], inputs["v_b"]
        s_a = (inputs["lse_a"] * LOG2E).contiguous()  # FlashInfer cascade: base-2 LSE
        s_b = (inputs["lse_b"] * LOG2E).contiguous()

        def relayout() -> None:
            torch.mul(inputs["lse_a"], LOG2E, out=s_a)
            torch.mul(inputs["lse_b"], LOG2E, out=s_b)

        def fn() -> None:
            v_merged, _ = mod.merge_state(va, s_a, vb, s_b)
            out.copy_(v_merged)

        p = case.params
        notes = [*self.base_notes(), "launcher flashinfer.triton.cascade.merge_state; LSE converted to base 2 "
                 "in prepare; launcher allocates its output, copy into the bench buffer is timed",
                 "no CUDA graph: the launcher builds s_merged as torch.empty((T, H)).to(device), a host "
                 "allocation + pageable H2D copy per call (in the timed call; capture rejects it)",
                 f"upstream kernel is scalar: grid (T,) = {p['T']} programs of 4 warps, each a serial loop of "
                 f"D*H = {p['D'] * p['H']} steps of four one-element loads: latency-bound by design; FlashInfer's "
                 "wrappers use its CUDA merge_state instead"]
        return Prepared(fn, {"config": {"grid": "(T,)", "bdx": "D", "bdy": "H", "num_warps": 4},
                             "config_source": "launcher fixed (no tuning table)", "notes": "; ".join(notes)},
                        relayout=relayout)


class SglangMergeState(SglangImpl):
    kernel = "merge_attn_states"
    dtypes = ("bf16", "fp16")
    modules = (SGL_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[SGL_MOD]
        va, vb, lse_a, lse_b = inputs["v_a"], inputs["v_b"], inputs["lse_a"], inputs["lse_b"]
        out_lse = torch.empty_like(lse_a)

        def fn() -> None:
            mod.merge_state_triton(va, lse_a, vb, lse_b, output=out, output_lse=out_lse)

        notes = [*self.base_notes(), "launcher merge_state_triton with preallocated output and output_lse"]
        return Prepared(fn, {"config": {"grid": "(T, H)", "PADDED_HEAD_SIZE": "next_pow2(D)"},
                             "config_source": "launcher fixed (no tuning table)", "notes": "; ".join(notes)})


IMPLS = [VllmMergeAttnStates(), FlashinferMergeState(), SglangMergeState()]
