"""S-state attention merge: FlashInfer 0.7.2.post1 `flashinfer.triton.cascade.merge_states`.

LSEs converted to base 2 in prepare (FlashInfer's cascade kernels use exp2/log2).  The launcher allocates and
returns (v_merged, s_merged); the copy of v_merged into the bench buffer is timed (noted).

Why this row is slow (the upstream's own kernel, not the call: layout, dtypes and contiguity are what the
launcher asserts, nothing else is timed but one output copy): `merge_states_kernel` is scalar.  Its grid is (T,)
and each program runs `for tx in range(D): for head in range(H): for s in range(S)` with one-element loads (a
bf16 of v and an fp32 LSE per step, a dependent exp2 chain), all 128 threads of its 4 warps doing the same scalar
work and thread 0 storing (PTX compiled for sm_90 with triton 3.6: unvectorized ld.global.b16 / .b32 in a
3-deep loop, stores predicated on tid == 0).  So one program makes D*H*S serial round trips (2560 at H=5,
D=128, S=4) and the kernel is latency-bound, not bandwidth-bound.  FlashInfer's own wrappers call the CUDA
kernel (`flashinfer.cascade.merge_states`); this Triton port is the catalog's row 17 and has no caller in
FlashInfer, vLLM or SGLang.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.attention._common import LOG2E
from upstream_adapters.attention._common import FlashinferImpl

FI_MOD = "flashinfer.triton.cascade"


class FlashinferMergeStates(FlashinferImpl):
    kernel = "merge_states"
    dtypes = ("bf16", "fp16")
    modules = (FI_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FI_MOD]
        v = inputs["v"]
        s = (inputs["lse"] * LOG2E).contiguous()  # base-2 LSE, as FlashInfer's attention hands it over (untimed)

        def fn() -> None:
            v_merged, _ = mod.merge_states(v, s)
            out.copy_(v_merged)

        p = case.params
        notes = [*self.base_notes(), "launcher flashinfer.triton.cascade.merge_states; LSE converted to base 2 "
                 "in prepare; launcher allocates its output, copy into the bench buffer is timed",
                 f"upstream kernel is scalar: grid (T,) = {p['T']} programs of 4 warps, each a serial loop of "
                 f"D*H*S = {p['D'] * p['H'] * p['S']} one-element v + LSE loads (threads redundant, thread 0 "
                 "stores): latency-bound by design, not by this call; FlashInfer's wrappers use its CUDA "
                 "merge_states instead"]
        return Prepared(fn, {"config": {"grid": "(T,)", "bdx": "D", "bdy": "H", "num_warps": 4},
                             "config_source": "launcher fixed (no tuning table)", "notes": "; ".join(notes)},
                        relayout=lambda: torch.mul(inputs["lse"], LOG2E, out=s))


IMPLS = [FlashinferMergeStates()]
