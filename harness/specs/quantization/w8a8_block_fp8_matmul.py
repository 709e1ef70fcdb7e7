"""W8A8 block-FP8 GEMM (catalog rows 66 vLLM `_w8a8_triton_block_scaled_mm`, 68 SGLang `_w8a8_block_fp8_matmul`).

Math (DeepSeek-V3-style block fp8 linear layer, blocks of 128):

    C[m, n] = sum_k (A[m, k] * As[m, k // 128]) * (B[n, k] * Bs[n // 128, k // 128])

Shapes: A [M, K] float8_e4m3fn activations with As [M, ceil(K/128)] fp32 (per token and group of 128, as
per_token_group_quant_fp8 makes them); B [N, K] float8_e4m3fn weight with Bs [ceil(N/128), ceil(K/128)] fp32;
C [M, N] bf16.  A and As are inputs (the activation quantization is its own spec, per_token_group_quant_fp8).

Cases: the block-fp8 linear layers of MLA models (DeepSeek-V3 family checkpoints ship in this format):
q_a_proj (N = q_lora_rank), kv_a_proj_with_mqa (N = kv_lora_rank + qk_rope_head_dim), both K = hidden_size,
and, where the model has leading dense layers, their MLP gate_up (N = 2 * dense_intermediate_size / tp) and
down (N = hidden_size, K = dense_intermediate_size / tp) projections.  Models without `mla` get no cases.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.moe.fused_moe import dequantize_weight_block, quantize_weight_block
from harness.specs.quantization._common import FP8_MAX

BLOCK = 128
FP8 = "fp8_w8a8_block128"


def quantize_act_groups(x: torch.Tensor, group: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """[M, K] float -> (float8_e4m3fn [M, K], fp32 [M, ceil(K/group)]), scale = max(amax, 1e-10) / 448."""
    m, k = x.shape
    kp = math.ceil(k / group) * group
    padded = torch.zeros(m, kp, dtype=torch.float32, device=x.device)
    padded[:, :k] = x.float()
    g = padded.view(m, kp // group, group)
    scale = g.abs().amax(dim=2, keepdim=True).clamp_min(1e-10) / FP8_MAX
    q = (g / scale).clamp(-FP8_MAX, FP8_MAX).view(m, kp)[:, :k]
    return q.to(torch.float8_e4m3fn).contiguous(), scale[..., 0].contiguous()


def dequantize_act_groups(q: torch.Tensor, scale: torch.Tensor, group: int = BLOCK) -> torch.Tensor:
    k = q.shape[1]
    return q.float() * scale.repeat_interleave(group, dim=1)[:, :k]


class W8A8BlockFp8MatmulSpec(KernelSpec):
    id = "w8a8_block_fp8_matmul"
    category = "quantization"
    catalog_rows = (66, 68)
    token_dim = 'M'
    title = "W8A8 block-FP8 GEMM (128x128 weight blocks, per-token-group-128 activations), bf16 out"
    dtypes: ClassVar[tuple[str, ...]] = (FP8,)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("mla") or not model.has("hidden_size"):
            return []
        h, tp = int(model.get("hidden_size")), model.tp
        layers: list[tuple[str, int, int]] = []
        if model.has("mla.q_lora_rank") and model.get("mla.q_lora_rank"):
            layers.append(("q_a_proj", int(model.get("mla.q_lora_rank")), h))
        if model.has("mla.kv_lora_rank") and model.has("mla.qk_rope_head_dim"):
            layers.append(("kv_a_proj", int(model.get("mla.kv_lora_rank")) + int(model.get("mla.qk_rope_head_dim")), h))
        if model.has("moe.dense_intermediate_size"):
            inter = int(model.get("moe.dense_intermediate_size")) // tp
            layers += [("dense_gate_up", 2 * inter, h), ("dense_down", h, inter)]
        out = []
        for regime in ("decode", "prefill"):
            for m in model.tokens(regime, quick=quick):
                for name, n, k in layers:
                    out.append(Case(model.name, regime, {"M": m, "N": n, "K": k, "layer": name}))
        return out

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"M": 5, "N": 200, "K": 320, "layer": "test"}),
                Case("test", "test", {"M": 1, "N": 64, "K": 128, "layer": "test"})]

    def check_cases(self) -> list[Case]:
        # multiples of 128 in N and K: every provider's tuned-config and masking paths accept it
        return [Case("check", "test", {"M": 33, "N": 512, "K": 768, "layer": "check"})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != FP8:
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: {FP8}")
        p = case.params
        m, n, k = p["M"], p["N"], p["K"]
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(m, k, generator=g, device=device, dtype=torch.float32)
        w = torch.randn(1, n, k, generator=g, device=device, dtype=torch.float32) / math.sqrt(k)
        a, a_s = quantize_act_groups(x)
        b, b_s = quantize_weight_block(w)
        return {"A": a, "As": a_s, "B": b[0].contiguous(), "Bs": b_s[0].contiguous()}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        a, b = inputs["A"], inputs["B"]
        return torch.empty(a.shape[0], b.shape[0], dtype=torch.bfloat16, device=a.device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        a = dequantize_act_groups(inputs["A"], inputs["As"])
        b = dequantize_weight_block(inputs["B"][None], inputs["Bs"][None])[0]
        with exact_fp32():
            return a @ b.t()

    def tolerance(self, dtype: str) -> Tolerance:
        # fp8 products are exact in fp32 and the scales are applied per K block in fp32, so only accumulation
        # order and the bf16 output rounding (~1.1e-3 rel. norm) remain; a missed or misplaced scale is >= 1e-1.
        return Tolerance(5e-3, "exact dequantized operands in ref; fp32 accumulate, bf16 output")

    def flops(self, case: Case) -> float:
        p = case.params
        return 2.0 * p["M"] * p["N"] * p["K"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        m, n, k = p["M"], p["N"], p["K"]
        kb, nb = math.ceil(k / BLOCK), math.ceil(n / BLOCK)
        return m * k + m * kb * 4 + n * k + nb * kb * 4 + m * n * 2


SPEC = W8A8BlockFp8MatmulSpec()
