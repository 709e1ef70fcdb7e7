"""Gated linear attention, chunked forward (catalog row 23: fla `chunk_gla`, fla/ops/gla/chunk.py, kernels
`chunk_gla_fwd_kernel_o` and friends).

Per sequence and head, with state S [K, V] and a per-key log forget gate gk_t [K]:

    S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T,     o_t = scale * S_t^T q_t,     scale = K^-0.5

Shapes (varlen as fla takes them): N sequences of T tokens, L = N * T; q, k, gk [1, L, H, K]; v [1, L, H, V];
h0 [N, H, K, V] fp32; cu_seqlens [N + 1].  Named outputs, both compared: o [1, L, H, V] (model dtype) and
final_state [N, H, K, V] fp32 (output_final_state=True, as a serving layer keeps it).

Model rows: shapes/gla-2.7b.yaml (`linear_attention.kind: gla`; prefill, one sequence).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import gla_inputs, gla_reference, state_outputs, torch_dtype

CHUNK = 64


def gla_dims(model: ModelShapes) -> dict[str, int] | None:
    """Per-GPU GLA heads and dims; None unless the model declares linear_attention.kind: gla."""
    if model.get("linear_attention.kind", None) != "gla":
        return None
    h = model.get("linear_attention.num_heads")
    if h % model.tp:
        return None
    return {"H": h // model.tp, "K": model.get("linear_attention.head_k_dim"),
            "V": model.get("linear_attention.head_v_dim")}


class GLAChunkSpec(KernelSpec):
    id = "gla_chunk"
    category = "linear"
    catalog_rows = (23,)
    token_dim = 'T'
    title = "Gated linear attention (GLA), chunked forward"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = gla_dims(model)
        if dims is None:
            return []
        return [Case(model.name, "prefill", {"T": t, "N": 1, **dims}) for t in model.tokens("prefill", quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "N": 2, "H": 2, "K": 8, "V": 6}),
                Case("test", "test", {"T": 5, "N": 1, "H": 1, "K": 4, "V": 5})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 150, "N": 2, "H": 4, "K": 128, "V": 128})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        return gla_inputs(p["N"], p["T"], p["H"], p["K"], p["V"], dtype, device, seed)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return state_outputs(inputs, dtype)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        o, final = gla_reference(inputs["q"], inputs["k"], inputs["v"], inputs["gk"], inputs["h0"],
                                 inputs["cu_seqlens"], inputs["scale"])
        return {"o": o, "final_state": final}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # fla's tests/ops/test_gla.py accept o at a relative RMS error of 5e-3 (bf16) against the fp32 recurrence;
        # 2x for the bf16 h0 contribution through chunk states.  A dropped gate or h0 gives > 1e-1.  The final
        # state is fp32 in fla, but its chunk updates (k e^{b_last - b})^T v take bf16 operands: same bound.
        return {"o": Tolerance(1e-2, "fla test_gla o ratio 5e-3 x2 (bf16)"),
                "final_state": Tolerance(1e-2, "fla test_gla ht ratio 5e-3 x2 (fp32 state, bf16 chunk updates)")}

    def flops(self, case: Case) -> float:
        """Chunked form per token and head: q k^T and (q k^T) v in the chunk (2C(K + V)), q S and the state update
        k^T v (4KV)."""
        p = case.params
        return float(p["N"] * p["T"] * p["H"] * (2 * CHUNK * (p["K"] + p["V"]) + 4 * p["K"] * p["V"]))

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        length = p["N"] * p["T"]
        return float(elt * length * p["H"] * (3 * p["K"] + 2 * p["V"]) + 2 * 4 * p["N"] * p["H"] * p["K"] * p["V"])


SPEC = GLAChunkSpec()
