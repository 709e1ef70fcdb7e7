"""KDA (Kimi Delta Attention) chunked prefill (catalog rows 7, fla `chunk_kda_fwd_intra` /
`chunk_kda_fwd_kernel_inter_solve_fused` inside `chunk_kda`, and 9, SGLang's KDA `chunk_kda`): the
recurrence of kda_fused_recurrent (harness/specs/attention/kda_fused_recurrent.py: L2-normed q/k, per-channel
decay exp(g), delta-rule update, readout) over whole prompts, computed chunk-parallel by the kernels.

Shapes (varlen, flattened as serving runs it): q, k [1, N, H, K]; v [1, N, HV, V] (bf16/fp16); g [1, N, HV, K]
fp32 log-decays; beta [1, N, HV]; cu_seqlens [B + 1] int64; initial_state [B, HV, K, V] fp32 (a cached
state, as in chunked prefill).  Named outputs, both compared: o [1, N, HV, V] (model dtype) and final_state
[B, HV, K, V] fp32, each sequence's state after its last token (fla output_final_state=True; SGLang writes it back
into its state pool): the serving layers keep it for the next chunk / decode.  A prefill of T tokens is split into
sequences of at most 8192 tokens; test cases are ragged.  The reference runs the recurrence token by token in fp32.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.attention._common import torch_dtype
from harness.specs.attention.kda_fused_recurrent import kda_inputs, kda_recurrence_with_state
from harness.specs.attention.kda_gate import kda_heads
from harness.specs.linear._common import state_outputs

MAX_SEQ = 8192


def chunk_lens(p: dict) -> list[int]:
    if not p.get("ragged", 0):
        return [p["S"]] * p["B"]
    return [max(1, p["S"] - (b * 29) % max(1, p["S"] // 2)) if b else p["S"] for b in range(p["B"])]


class KdaChunkSpec(KernelSpec):
    id = "kda_chunk"
    category = "attention"
    catalog_rows = (7, 9)
    token_dim = 'S'
    title = "KDA chunked prefill (varlen, cached initial state)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", "fp16")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        hk = kda_heads(model)
        if hk is None or not model.has("linear_attention.head_v_dim"):
            return []
        v = int(model.get("linear_attention.head_v_dim"))
        out = []
        for t in model.tokens("prefill", quick=quick):
            s = min(t, MAX_SEQ)
            out.append(Case(model.name, "prefill", {"B": max(1, t // s), "S": s, "H": hk[0], "HV": hk[0],
                                                     "K": hk[1], "V": v, "ragged": 0}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "S": 19, "H": 2, "HV": 2, "K": 16, "V": 24, "ragged": 1}),
                Case("test", "test", {"B": 1, "S": 5, "H": 1, "HV": 1, "K": 8, "V": 8, "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # several 64-token chunks plus partial ones; K = V = 128 as Kimi Linear
        return [Case("check", "test", {"B": 3, "S": 200, "H": 2, "HV": 2, "K": 128, "V": 128, "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        lens = chunk_lens(p)
        inp = kda_inputs(1, sum(lens), p["H"], p["HV"], p["K"], p["V"], torch_dtype(dtype, self.id), seed, device)
        g = torch.Generator(device=device).manual_seed(seed + 1)
        inp["initial_state"] = torch.randn(len(lens), p["HV"], p["K"], p["V"], generator=g, device=device) \
            / p["K"] ** 0.5
        cu = torch.zeros(len(lens) + 1, dtype=torch.int64, device=device)
        cu[1:] = torch.cumsum(torch.tensor(lens, device=device), 0)
        inp["cu_seqlens"] = cu
        return inp

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        return state_outputs(inputs, dtype, state="initial_state")

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        cu = inputs["cu_seqlens"].tolist()
        h0 = inputs["initial_state"]
        out = torch.empty(inputs["v"].shape, dtype=torch.float32, device=inputs["v"].device)
        final = torch.empty(h0.shape, dtype=torch.float32, device=h0.device)
        for b in range(len(cu) - 1):
            sl = slice(cu[b], cu[b + 1])
            out[:, sl], final[b:b + 1] = kda_recurrence_with_state(
                inputs["q"][:, sl], inputs["k"][:, sl], inputs["v"][:, sl], inputs["g"][:, sl],
                inputs["beta"][:, sl], h0[b:b + 1], inputs["scale"])
        return {"o": out, "final_state": final}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # the chunk form feeds bf16/fp16 q, k, w, u and the within-chunk matrices to tl.dot (fp32 accumulate);
        # fla's tests/ops/test_kda.py (test_chunk, test_chunk_varlen, fp16) bound both o and ht at an RMS ratio of
        # 5e-3 vs the fp32 recurrence.  The final state is fp32 in every provider but its update dots take the
        # same bf16/fp16 kg / u (v_new) operands; it skips o's output rounding, so its bound is at most o's.
        if dtype == "bf16":
            return {"o": Tolerance(2e-2, "bf16 operands in the chunked WY form, fp32 state; fla tests: 5e-3 RMS "
                                         "ratio"),
                    "final_state": Tolerance(1e-2, "fla test_kda ht ratio 5e-3 (fp16) x2 for bf16 kg/u operands "
                                                   "in the fp32 state update")}
        return {"o": Tolerance(8e-3, "fp16 operands in the chunked WY form, fp32 state"),
                "final_state": Tolerance(8e-3, "fla test_kda ht ratio 5e-3 (fp16 kg/u operands, fp32 state), "
                                               "same margin as o")}

    def flops(self, case: Case) -> float:
        """Useful work of the chunk algorithm with chunk C=64: per chunk and head, the within-chunk K K^T and
        Q K^T (2 * 2C^2 K), the triangular solve (C^3 / 3), w/u (2 * 2C^2 (K+V)/2), state readout and update
        (2 * 2C K V), output (2C^2 V)."""
        p = case.params
        c = 64
        tokens = sum(chunk_lens(p))
        per_token = (4 * c * p["K"] + c * c / 3 + 2 * c * (p["K"] + p["V"]) + 4 * p["K"] * p["V"] + 2 * c * p["V"])
        return float(tokens * p["HV"] * per_token)

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        n, b = sum(chunk_lens(p)), p["B"]
        per_token = 2 * p["H"] * p["K"] * elt + 2 * p["HV"] * p["V"] * elt + p["HV"] * p["K"] * 4 + p["HV"] * elt
        # q, k, v, g, beta read and o written per token; initial_state read and final_state written once (fp32)
        return n * per_token + 2.0 * b * p["HV"] * p["K"] * p["V"] * 4


SPEC = KdaChunkSpec()
