"""KDA gate: fla-core 0.6.0 `fla.ops.kda.gate.fused_kda_gate` (autograd entry; forward = `kda_gate_fwd`, an
autotuned Triton kernel, `fla_cache_autotune` keyed on (H, D)).

FLA_DISABLE_BACKEND_DISPATCH=1 is set before fla imports, so `@dispatch('kda')` keeps the Triton path.  The
launcher allocates its output; the copy into the bench buffer is timed (noted).  Inputs do not require grad,
so no autograd state is saved.
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.attention._common import FlaImpl

FLA_MOD = "fla.ops.kda.gate"


class FlaKdaGate(FlaImpl):
    kernel = "kda_gate"
    dtypes = ("bf16", "fp16")
    modules = (FLA_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[FLA_MOD]
        g, a_log, dt_bias = inputs["g"], inputs["A_log"], inputs["dt_bias"]

        def fn() -> None:
            out.copy_(mod.fused_kda_gate(g, a_log, dt_bias, None, torch.float32))

        notes = [*self.base_notes(), "FLA_DISABLE_BACKEND_DISPATCH=1 (Triton path); lower_bound None; "
                 "launcher allocates its output, copy into the bench buffer is timed"]
        return Prepared(fn, {"config": {"autotune": "BT in (32, 64, 128) x num_warps, key (H, D)"},
                             "config_source": "fla autotune at first call (fla_cache_autotune)",
                             "notes": "; ".join(notes)})


IMPLS = [FlaKdaGate()]
