"""Fused MoE experts (catalog rows 41 vLLM `fused_moe_kernel`, 42 SGLang `fused_moe_kernel`).

Math, per token m with routed experts e_j and router weights w_j (j < top_k):

    out[m] = sum_j w_j * ( silu(h[m] @ W1[e_j, :N].T) * (h[m] @ W1[e_j, N:].T) ) @ W2[e_j].T

Shapes: hidden_states [M, K]; w1 [E, 2N, K] (gate rows, then up rows); w2 [E, K, N]; topk_weights [M, top_k]
fp32; topk_ids [M, top_k] int32; out [M, K].  N is the per-GPU expert width: moe.intermediate_size / tp.

Timed region, the same for every provider: gate-up GEMM over expert-sorted token blocks, SiLU-and-mul,
down GEMM with the router weight, top-k reduction.  Routing metadata (moe_align_block_size, catalog row 44,
its own kernel) is computed in each impl's untimed prepare with that impl's block size.

dtypes:
  bf16                 activations, weights and output bf16.
  fp8_w8a8_block128    weights float8_e4m3fn with fp32 scales per [128, 128] block (DeepSeek-V3 style);
                       activations quantized by the impl, dynamically, per token and group of 128 along K
                       (scale = amax / 448), before each GEMM; output bf16.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32

FP8_MAX = 448.0  # float8_e4m3fn
BLOCK = 128
FP8 = "fp8_w8a8_block128"


def quantize_weight_block(w: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, R, C] float -> (float8_e4m3fn [E, R, C], fp32 scales [E, ceil(R/b), ceil(C/b)])."""
    e, r, c = w.shape
    rp, cp = math.ceil(r / block) * block, math.ceil(c / block) * block
    padded = torch.zeros(e, rp, cp, dtype=torch.float32, device=w.device)
    padded[:, :r, :c] = w.float()
    tiles = padded.view(e, rp // block, block, cp // block, block)
    amax = tiles.abs().amax(dim=(2, 4)).clamp_min(1e-10)
    scale = amax / FP8_MAX
    q = (tiles / scale[:, :, None, :, None]).clamp(-FP8_MAX, FP8_MAX).view(e, rp, cp)[:, :r, :c]
    return q.to(torch.float8_e4m3fn).contiguous(), scale.contiguous()


def dequantize_weight_block(q: torch.Tensor, scale: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    e, r, c = q.shape
    s = scale.repeat_interleave(block, dim=1)[:, :r].repeat_interleave(block, dim=2)[:, :, :c]
    return q.float() * s


def fake_quant_act(x: torch.Tensor, group: int = BLOCK) -> torch.Tensor:
    """Quantize-dequantize [T, C] per token and group of `group` columns, as vLLM's per_token_group_quant_fp8
    does (scale = max(amax, 1e-10) / 448), in fp32."""
    t, c = x.shape
    cp = math.ceil(c / group) * group
    padded = torch.zeros(t, cp, dtype=torch.float32, device=x.device)
    padded[:, :c] = x.float()
    g = padded.view(t, cp // group, group)
    scale = g.abs().amax(dim=2, keepdim=True).clamp_min(1e-10) / FP8_MAX
    q = (g / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn).float()
    return (q * scale).view(t, cp)[:, :c]


class FusedMoESpec(KernelSpec):
    id = "fused_moe"
    category = "moe"
    catalog_rows = (41, 42)
    token_dim = 'M'
    title = "Fused MoE experts (gate-up GEMM, SiLU-and-mul, down GEMM, top-k weighting)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16", FP8)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("moe"):
            return []
        tp = model.tp
        dims = {
            "E": model.get("moe.num_experts"),
            "top_k": model.get("moe.top_k"),
            "K": model.get("hidden_size"),
            "N": model.get("moe.intermediate_size") // tp,
            "tp": tp,
        }
        out = []
        for regime in ("decode", "prefill"):
            for m in model.tokens(regime, quick=quick):
                out.append(Case(model=model.name, regime=regime, params={"M": m, **dims}))
        return out

    def test_cases(self) -> list[Case]:
        return [
            Case("test", "test", {"M": 5, "E": 6, "top_k": 2, "K": 96, "N": 40, "tp": 1}),
            Case("test", "test", {"M": 1, "E": 4, "top_k": 2, "K": 64, "N": 32, "tp": 1}),
        ]

    def check_cases(self) -> list[Case]:
        # widths that are multiples of the fp8 block (128), so `harness check` gates the fp8 path too
        return [Case("check", "test", {"M": 33, "E": 8, "top_k": 2, "K": 256, "N": 384, "tp": 1})]

    def invalid_reason(self, case: Case, dtype: str) -> str | None:
        # block-fp8 checkpoints need the per-GPU expert width to split into whole 128-wide blocks (vLLM refuses
        # to load them otherwise: "output_size ... is not divisible by weight quantization block_n")
        if dtype == FP8 and case.params["N"] % BLOCK:
            return f"N={case.params['N']} (expert width / tp) is not a multiple of the fp8 block {BLOCK}"
        return None

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        m, e, top_k, k, n = p["M"], p["E"], p["top_k"], p["K"], p["N"]
        g = torch.Generator(device=device).manual_seed(seed)
        hidden = torch.randn(m, k, generator=g, device=device, dtype=torch.float32)
        w1 = torch.randn(e, 2 * n, k, generator=g, device=device, dtype=torch.float32) / math.sqrt(k)
        w2 = torch.randn(e, k, n, generator=g, device=device, dtype=torch.float32) / math.sqrt(n)
        logits = torch.randn(m, e, generator=g, device=device, dtype=torch.float32)
        # softmax routing, top-k renormalized (Qwen3 / DeepSeek norm_topk_prob): weights in (0, 1], sum 1
        weights, ids = torch.topk(logits.softmax(-1), top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        inputs: Inputs = {
            "hidden_states": hidden.to(torch.bfloat16),
            "topk_weights": weights.contiguous(),
            "topk_ids": ids.to(torch.int32).contiguous(),
        }
        if dtype == "bf16":
            inputs["w1"] = w1.to(torch.bfloat16)
            inputs["w2"] = w2.to(torch.bfloat16)
        elif dtype == FP8:
            inputs["w1"], inputs["w1_scale"] = quantize_weight_block(w1)
            inputs["w2"], inputs["w2_scale"] = quantize_weight_block(w2)
        else:
            raise ValueError(f"fused_moe: unknown dtype {dtype!r}; valid: {', '.join(self.dtypes)}")
        del w1, w2
        return inputs

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        h = inputs["hidden_states"]
        return torch.empty(h.shape, dtype=torch.bfloat16, device=h.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """fp32 (TF32 off), expert by expert.  fp8: dequantized weights, and activations quantize-dequantized
        exactly as the impls must do it, so the bound measures the kernel, not the fp8 format."""
        h = inputs["hidden_states"].float()
        ids = inputs["topk_ids"].long()
        wts = inputs["topk_weights"].float()
        fp8 = dtype == FP8
        m, k = h.shape
        out = torch.zeros(m, k, dtype=torch.float32, device=h.device)
        with exact_fp32():
            for e in torch.unique(ids).tolist():
                tok, slot = torch.nonzero(ids == e, as_tuple=True)
                if fp8:
                    w1 = dequantize_weight_block(inputs["w1"][e:e + 1], inputs["w1_scale"][e:e + 1])[0]
                    w2 = dequantize_weight_block(inputs["w2"][e:e + 1], inputs["w2_scale"][e:e + 1])[0]
                else:
                    w1 = inputs["w1"][e].float()
                    w2 = inputs["w2"][e].float()
                x = h[tok]
                if fp8:
                    x = fake_quant_act(x)
                gate_up = x @ w1.t()
                n = gate_up.shape[1] // 2
                act = F.silu(gate_up[:, :n]) * gate_up[:, n:]
                if fp8:  # both upstreams store the activation in bf16, then quantize it for the down GEMM
                    act = fake_quant_act(act.to(torch.bfloat16).float())
                y = (act @ w2.t()) * wts[tok, slot][:, None]
                out.index_add_(0, tok, y)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        if dtype == "bf16":
            # bf16 operands with fp32 accumulation land at 1e-3..5e-3 (METHOD.md); the bf16 intermediate adds
            # ~2e-3.  Measured: vLLM 0.33.0 gate-up GEMM 1.7e-3 on the H100 (device_notes.md).
            return Tolerance(1e-2, "bf16 operands, fp32 accumulate, bf16 intermediate")
        # reference quantizes activations the same way, so only rounding-boundary flips and accumulation order
        # remain (~1e-2 seen in fp8 GEMMs); a wrong scale or block gives >= 1e-1.
        return Tolerance(3e-2, "fp8 e4m3 block-128 weights, per-token-group-128 activations emulated in ref")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["M"] * p["top_k"] * 3 * p["N"] * p["K"]

    def bytes(self, case: Case, dtype: str) -> float:
        """Activations in and out, plus the weights of every expert that gets a token (expected count under
        uniform routing: E * (1 - (1 - top_k/E)^M)), each read once."""
        p = case.params
        m, e, top_k, k, n = p["M"], p["E"], p["top_k"], p["K"], p["N"]
        active = e * (1.0 - (1.0 - top_k / e) ** m)
        w_elt = 1.0 if dtype == FP8 else 2.0
        weights = active * 3 * n * k * w_elt
        if dtype == FP8:
            weights += active * 3 * math.ceil(n / BLOCK) * math.ceil(k / BLOCK) * 4
        return weights + 2 * m * k * 2 + m * top_k * 8


SPEC = FusedMoESpec()
