"""KDA recurrent decode step: fla-core 0.6.0 `fla.ops.kda.fused_recurrent.fused_recurrent_kda` with
use_qk_l2norm_in_kernel=True and output_final_state=True (Kimi Linear's decode call in fla's
KimiDeltaAttention layer), g given as log-decays (use_gate_in_kernel False), beta post-sigmoid.

FLA_DISABLE_BACKEND_DISPATCH=1 is set before fla imports.  The launcher allocates o (zeros_like(v)) and a
fresh final state (it has no out= arguments); the copies of both into the spec's named outputs o / final_state
are timed (noted).  initial_state is only read
(inplace_final_state False), so repeated calls compute the same step.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import FlaImpl

FLA_MOD = "fla.ops.kda.fused_recurrent"


class FlaKdaFusedRecurrent(FlaImpl):
    kernel = "kda_fused_recurrent"
    dtypes = ("bf16", "fp16")
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: dict[str, torch.Tensor], case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FLA_MOD]
        q, k, v, g, beta = inputs["q"], inputs["k"], inputs["v"], inputs["g"], inputs["beta"]
        h0, scale = inputs["initial_state"], float(inputs["scale"])

        def fn() -> None:
            o, ht = mod.fused_recurrent_kda(q, k, v, g, beta, scale=scale, initial_state=h0,
                                            output_final_state=True, use_qk_l2norm_in_kernel=True)
            out["o"].copy_(o)
            out["final_state"].copy_(ht)

        notes = [*self.base_notes(), "FLA_DISABLE_BACKEND_DISPATCH=1 (Triton path); l2norm in kernel; "
                 "o and final state copied into the harness buffers (no out= arguments; timed)"]
        return Prepared(fn, {"config": {"BV": 32, "BK": "next_pow2(K)", "num_warps": 4, "num_stages": 2},
                             "config_source": "launcher fixed", "notes": "; ".join(notes)})


IMPLS = [FlaKdaFusedRecurrent()]
