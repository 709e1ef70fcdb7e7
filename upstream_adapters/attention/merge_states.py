"""S-state attention merge: FlashInfer 0.7.2.post1 `flashinfer.triton.cascade.merge_states`.

LSEs converted to base 2 in prepare (FlashInfer's cascade kernels use exp2/log2).  The launcher allocates and
returns (v_merged, s_merged); the copy of v_merged into the bench buffer is timed (noted).
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

        notes = [*self.base_notes(), "launcher flashinfer.triton.cascade.merge_states; LSE converted to base 2 "
                 "in prepare; launcher allocates its output, copy into the bench buffer is timed"]
        return Prepared(fn, {"config": {"grid": "(T,)", "bdx": "D", "bdy": "H"},
                             "config_source": "launcher fixed (no tuning table)", "notes": "; ".join(notes)},
                        relayout=lambda: torch.mul(inputs["lse"], LOG2E, out=s))


IMPLS = [FlashinferMergeStates()]
