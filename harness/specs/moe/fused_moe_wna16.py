"""Fused-MoE grouped GEMM with int4 weights, bf16 activations (catalog row 43, vLLM
`invoke_fused_moe_wna16_triton_kernel` -> `fused_moe_kernel_gptq_awq`: GPTQ / AWQ int4 MoE checkpoints as vLLM's
MoeWNA16 method lays them out).

One call of the kernel = one of the two expert GEMMs of a fused-MoE layer, over expert-sorted token blocks.  For
slot s = m * top_k + j (token m, its j-th routed expert e = topk_ids[m, j]):

    out[m, j, :] = a[row(s)] @ W[e].T            gate_up: row(s) = m,  K = hidden, N = 2 * inter / tp
    out[m, j, :] = w[m, j] * a[row(s)] @ W[e].T  down:    row(s) = s,  K = inter / tp, N = hidden

where a is [M, K] (gate_up) or [M * top_k, K] (down: the activated gate-up output, one row per slot), bf16, and

    W[e][n, k] = (w4[e, n, k] - z[e, n, k // G]) * scale[e, n, k // G]     (fp32)

w4: int4 values 0..15 packed two per byte along K (k even in the low nibble): qweight [E, N, K / 2] uint8.
scale [E, N, K / G] bf16.  z: dtype `w4a16` (GPTQ symmetric) has no zero points, z = 8; dtype `w4a16_zp`
(AWQ / GPTQ asymmetric) has qzeros [E, N / 2, K / G] uint8, two zero points per byte along N (n even in the low
nibble).  This is the layout of vLLM's MoeWNA16Method.create_weights (w13_qweight / w13_scales / w13_qzeros).
G is the checkpoint's group size, 128, halved (down to 32) until it divides both hidden and inter / tp, as
MoeWNA16Method.create_weights does.

Output: out [M, top_k, N] bf16, every slot written (the kernel's C in vLLM's intermediate caches).  Routing
metadata (moe_align_block_size, catalog row 44) is computed in the impl's untimed prepare with its own block size.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32

SYM, ZP = "w4a16", "w4a16_zp"
CHECKPOINT_GROUP = 128
SYM_ZERO = 8  # the kernel subtracts 8 from each nibble when there are no zero points
LAYERS = ("gate_up", "down")


def wna16_group(hidden: int, inter: int, group: int = CHECKPOINT_GROUP) -> int:
    """MoeWNA16Method.create_weights: halve the group until it divides hidden and inter / tp (>= 32)."""
    while inter % group or hidden % group:
        group //= 2
        if group < 32:
            raise ValueError(f"no int4 group >= 32 divides hidden={hidden} and inter={inter}")
    return group


def layer_dims(p: dict) -> tuple[int, int, int]:
    """(K, N, rows of a) of the case's GEMM."""
    if p["layer"] == "gate_up":
        return p["H"], 2 * p["I"], p["M"]
    return p["I"], p["H"], p["M"] * p["top_k"]


def pack_k(w4: torch.Tensor) -> torch.Tensor:
    """[..., K] ints 0..15 -> [..., K / 2] uint8, k even in the low nibble."""
    w = w4.to(torch.uint8)
    return (w[..., 0::2] | (w[..., 1::2] << 4)).contiguous()


def unpack_k(packed: torch.Tensor) -> torch.Tensor:
    """[..., K / 2] uint8 -> [..., K] int64."""
    p = packed.to(torch.int64)
    return torch.stack((p & 0xF, p >> 4), dim=-1).flatten(-2)


def pack_n(z4: torch.Tensor) -> torch.Tensor:
    """[E, N, Gk] ints 0..15 -> [E, N / 2, Gk] uint8, n even in the low nibble."""
    z = z4.to(torch.uint8)
    return (z[:, 0::2] | (z[:, 1::2] << 4)).contiguous()


def unpack_n(packed: torch.Tensor) -> torch.Tensor:
    """[E, N / 2, Gk] uint8 -> [E, N, Gk] int64."""
    p = packed.to(torch.int64)
    e, n2, gk = p.shape
    return torch.stack((p & 0xF, p >> 4), dim=2).reshape(e, 2 * n2, gk)


def dequantize_expert(inputs: Inputs, e: int, group: int) -> torch.Tensor:
    """W[e] [N, K] fp32 from the packed tensors."""
    w = unpack_k(inputs["qweight"][e]).float()
    s = inputs["scales"][e].float().repeat_interleave(group, dim=1)
    if "qzeros" in inputs:
        z = unpack_n(inputs["qzeros"][e:e + 1])[0].float().repeat_interleave(group, dim=1)
    else:
        z = torch.full_like(w, float(SYM_ZERO))
    return (w - z) * s


class FusedMoEWNA16Spec(KernelSpec):
    id = "fused_moe_wna16"
    category = "moe"
    catalog_rows = (43,)
    token_dim = 'M'
    title = "Fused-MoE grouped GEMM, int4 group-quantized weights (GPTQ/AWQ), bf16 activations"
    dtypes: ClassVar[tuple[str, ...]] = (SYM, ZP)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        if not model.has("moe"):
            return []
        h, inter = int(model.get("hidden_size")), int(model.get("moe.intermediate_size")) // model.tp
        dims = {"E": int(model.get("moe.num_experts")), "top_k": int(model.get("moe.top_k")), "H": h, "I": inter,
                "G": wna16_group(h, inter), "tp": model.tp}
        return [Case(model.name, regime, {"M": m, **dims, "layer": layer})
                for regime in ("decode", "prefill") for m in model.tokens(regime, quick=quick) for layer in LAYERS]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"M": 5, "E": 6, "top_k": 2, "H": 128, "I": 96, "G": 32, "tp": 1,
                                      "layer": "gate_up"}),
                Case("test", "test", {"M": 3, "E": 4, "top_k": 3, "H": 96, "I": 64, "G": 32, "tp": 1,
                                      "layer": "down"})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"M": 37, "E": 16, "top_k": 4, "H": 512, "I": 256, "G": 128, "tp": 1,
                                       "layer": "gate_up"}),
                Case("check", "test", {"M": 37, "E": 16, "top_k": 4, "H": 512, "I": 256, "G": 128, "tp": 1,
                                       "layer": "down"})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype not in self.dtypes:
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: {', '.join(self.dtypes)}")
        p = case.params
        m, e, top_k, group = p["M"], p["E"], p["top_k"], p["G"]
        k, n, rows = layer_dims(p)
        g = torch.Generator(device=device).manual_seed(seed)
        logits = torch.randn(m, e, generator=g, device=device)
        # softmax routing, top-k renormalized (Qwen3 / DeepSeek norm_topk_prob): distinct experts per token
        weights, ids = torch.topk(logits.softmax(-1), top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        w4 = torch.randint(0, 16, (e, n, k), generator=g, device=device)
        # |w4 - z| ~ 4.6 on average: scales ~ 1 / (4.6 sqrt(K)) keep outputs O(1), like a real layer's
        scales = (torch.rand(e, n, k // group, generator=g, device=device) + 0.5) / (4.6 * math.sqrt(k))
        inputs: Inputs = {
            "a": torch.randn(rows, k, generator=g, device=device).to(torch.bfloat16),
            "qweight": pack_k(w4),
            "scales": scales.to(torch.bfloat16),
            "topk_weights": weights.contiguous(),
            "topk_ids": ids.to(torch.int32).contiguous(),
        }
        if dtype == ZP:
            inputs["qzeros"] = pack_n(torch.randint(0, 16, (e, n, k // group), generator=g, device=device))
        return inputs

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        p = case.params
        _, n, _ = layer_dims(p)
        return torch.empty(p["M"], p["top_k"], n, dtype=torch.bfloat16, device=inputs["a"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """fp32 (TF32 off), expert by expert, weights dequantized from the packed tensors."""
        p = case.params
        _, n, _ = layer_dims(p)
        a, ids, wts = inputs["a"].float(), inputs["topk_ids"].long(), inputs["topk_weights"].float()
        m, top_k = ids.shape
        out = torch.zeros(m, top_k, n, dtype=torch.float32, device=a.device)
        with exact_fp32():
            for e in torch.unique(ids).tolist():
                tok, slot = torch.nonzero(ids == e, as_tuple=True)
                rows = tok if p["layer"] == "gate_up" else tok * top_k + slot
                y = a[rows] @ dequantize_expert(inputs, e, p["G"]).t()
                if p["layer"] == "down":
                    y = y * wts[tok, slot][:, None]
                out[tok, slot] = y
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        # The kernel rounds each dequantized weight to bf16 (2^-9 relative) before a bf16 x bf16 -> fp32 dot, and
        # stores bf16: ~3e-3 together.  A wrong nibble order, zero point, group or scale row is O(1e-1) or more.
        return Tolerance(1e-2, "int4 weights dequantized exactly in ref; bf16-rounded weights and output")

    def flops(self, case: Case) -> float:
        p = case.params
        k, n, _ = layer_dims(p)
        return 2.0 * p["M"] * p["top_k"] * n * k

    def bytes(self, case: Case, dtype: str) -> float:
        """Activations in, output out, and the packed weights / scales (/ zeros) of every expert that gets a
        token (expected count under uniform routing: E * (1 - (1 - top_k / E)^M)), each read once."""
        p = case.params
        m, e, top_k, group = p["M"], p["E"], p["top_k"], p["G"]
        k, n, rows = layer_dims(p)
        active = e * (1.0 - (1.0 - top_k / e) ** m)
        per_expert = n * k / 2 + n * (k // group) * 2 + (n * (k // group) / 2 if dtype == ZP else 0)
        return active * per_expert + rows * k * 2 + m * top_k * n * 2 + m * top_k * 8


SPEC = FusedMoEWNA16Spec()
