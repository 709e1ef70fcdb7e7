"""The two contracts of SGLang's multi-LoRA kernels, in SGLang's own layout (see _common.py): a shrink (LoRA A)
and an expand (LoRA B) over requests that each use one adapter or the base model.  Each SGLang kernel is its own
spec (subclass) because two kernels of one upstream cannot both be provider "sglang" of one spec; subclasses
differ only in the layer kinds their cases cover and in their catalog rows.

Why not providers of lora_shrink / lora_expand (vLLM's contract): vLLM's shrink writes a scaled fp32 [S, T, r]
buffer and its expand reads it back unscaled; SGLang's shrink writes an unscaled bf16 [T, S*r] buffer and its
expand applies the per-adapter scaling.  Forcing one contract onto the other would add a transpose and a scale
(and a looser bf16 bound) to one side's timed call.

Shrink:   out[t, :] = A[l] @ x[t]                         (l = adapter of token t; 0 where l = -1)
          x [T, H] bf16; A [L, S*r, H] bf16; out [T, S*r] bf16
Expand:   y[t, slice s] = base[t, slice s] + scaling[l] * xa[t, s*r:(s+1)*r] @ B[l, slice s].T   (y = base, l = -1)
          xa [T, S*r] bf16; B [L, sum(N_s), r] bf16; base, y [T, sum(N_s)] bf16; scaling per adapter in [0.25, 1]

Both also carry the request layout (`seg_lens`, `req_loras`, python lists) the batch metadata is built from, and
`mapping` ([T] int32 adapter per token) for references and ports.  All adapters have rank r.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.lora._common import (
    LAYER_SLICES,
    request_layout,
    sglang_cases,
    sglang_expand_math,
    sglang_shrink_math,
    slice_widths,
    tokens_of,
)

_TEST = {
    "proj": {"H": 96, "N": 96},
    "gate_up": {"H": 80, "N": 72},
    "qkv": {"H": 96, "N": 64, "Nkv": 32},
}
_CHECK = {
    "proj": {"H": 1024, "N": 1024},
    "gate_up": {"H": 1024, "N": 1536},
    "qkv": {"H": 1024, "N": 1024, "Nkv": 256},
}


class _SglangLoraSpec(KernelSpec):
    category = "lora"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)
    #: the merged-layer kinds this kernel runs on in SGLang (proj / gate_up / qkv)
    layers: ClassVar[tuple[str, ...]] = ()
    #: the adapter weights sit in a LoRA memory pool filled when an adapter loads (SGLang copies them into its
    #: [slots, ...] pool then), and the token-to-adapter mapping is batch metadata: prepare may read these;
    #: the activations (x, xa, base) are rewritten after prepare
    prepared_inputs = ("lora_a", "lora_b", "mapping")

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return sglang_cases(model, quick, self.layers)

    def test_cases(self) -> list[Case]:
        # odd sizes; one mixed-request shape per layer kind, one single-token batch, one decode batch
        out = [Case("test", "test", {"layer": layer, "T": 13, **_TEST[layer], "r": 8, "L": 3}) for layer in self.layers]
        first = self.layers[0]
        out.append(Case("test", "test", {"layer": first, "T": 1, **_TEST[first], "r": 16, "L": 1}))
        out.append(Case("test", "decode", {"layer": first, "T": 9, **_TEST[first], "r": 16, "L": 2}))
        return out

    def check_cases(self) -> list[Case]:
        # a decode batch (SGLang's Triton backend sorts its tokens by adapter) and a prefill batch (per-request
        # segments), of the first layer kind
        first = self.layers[0]
        return [Case("check", "decode", {"layer": first, "T": 37, **_CHECK[first], "r": 16, "L": 4}),
                Case("check", "prefill", {"layer": first, "T": 150, **_CHECK[first], "r": 16, "L": 4})]

    def _layout(self, case: Case, device: torch.device, g: torch.Generator) -> Inputs:
        p = case.params
        seg_lens, loras = request_layout(p["T"], p["L"], case.regime, g)
        # per-adapter lora_alpha / r, distinct so a wrong adapter's scaling shows
        scalings = [0.25 + 0.75 * (i + 1) / p["L"] for i in range(p["L"])]
        return {"seg_lens": seg_lens, "req_loras": loras, "mapping": tokens_of(seg_lens, loras, device),
                "scalings": scalings}

    @staticmethod
    def _check_dtype(spec_id: str, dtype: str) -> None:
        if dtype != "bf16":
            raise ValueError(f"{spec_id}: unknown dtype {dtype!r}; valid: bf16")


class SglangShrinkSpec(_SglangLoraSpec):
    """LoRA A of SGLang: x @ A[adapter].T for all stacked slices into a bf16 [T, S*r] buffer, unscaled."""

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        self._check_dtype(self.id, dtype)
        p = case.params
        s = LAYER_SLICES[p["layer"]]
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(p["T"], p["H"], generator=g, device=device)
        a = torch.randn(p["L"], s * p["r"], p["H"], generator=g, device=device) / math.sqrt(p["H"])
        return {"x": x.to(torch.bfloat16), "lora_a": a.to(torch.bfloat16), **self._layout(case, device, g)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        return torch.empty(p["T"], LAYER_SLICES[p["layer"]] * p["r"], dtype=torch.bfloat16,
                           device=inputs["x"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        with exact_fp32():
            return sglang_shrink_math(inputs["x"], inputs["lora_a"], inputs["mapping"])

    def tolerance(self, dtype: str) -> Tolerance:
        # fp32 accumulation stored as bf16: ~1.5e-3 rel. norm from the final rounding; a wrong adapter, a missing
        # slice or an unzeroed base-model row is O(1).
        return Tolerance(1e-2, "bf16 operands, fp32 accumulate, bf16 output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * LAYER_SLICES[p["layer"]] * p["r"] * p["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        n = LAYER_SLICES[p["layer"]] * p["r"]
        return p["T"] * p["H"] * 2 + p["L"] * n * p["H"] * 2 + p["T"] * n * 2 + p["T"] * 4


class SglangExpandSpec(_SglangLoraSpec):
    """LoRA B of SGLang: base + scaling[adapter] * xa @ B[adapter].T per slice, added into the base output."""

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        self._check_dtype(self.id, dtype)
        p = case.params
        widths = slice_widths(p)
        g = torch.Generator(device=device).manual_seed(seed)
        # xa as SGLang's shrink of a unit-variance x leaves it: N(0, 1) per rank entry, bf16
        xa = torch.randn(p["T"], len(widths) * p["r"], generator=g, device=device)
        b = torch.randn(p["L"], sum(widths), p["r"], generator=g, device=device) / math.sqrt(p["r"])
        base = torch.randn(p["T"], sum(widths), generator=g, device=device)
        return {"xa": xa.to(torch.bfloat16), "lora_b": b.to(torch.bfloat16), "base": base.to(torch.bfloat16),
                **self._layout(case, device, g)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["base"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        with exact_fp32():
            return sglang_expand_math(inputs["xa"], inputs["lora_b"], inputs["mapping"], inputs["base"],
                                      slice_widths(case.params), inputs["scalings"])

    def tolerance(self, dtype: str) -> Tolerance:
        # SGLang rounds the scaled fp32 product to bf16, then adds the bf16 base and stores bf16: ~3e-3 rel. norm;
        # a missing base, a missing or mis-scaled delta, a wrong adapter or slice offset is O(1e-1) or more.
        return Tolerance(1e-2, "bf16 round of the scaled product, bf16 add and output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["T"] * p["r"] * sum(slice_widths(p))

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        widths = slice_widths(p)
        n, t = sum(widths), p["T"]
        return t * len(widths) * p["r"] * 2 + p["L"] * n * p["r"] * 2 + 2 * t * n * 2 + t * 4
