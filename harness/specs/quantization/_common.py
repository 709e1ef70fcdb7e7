"""Shared pieces of the quantization specs: token cases from a model, random activations, and the exact
quantize math the upstream Triton kernels implement (written from the kernels' formulas, fp32).

Output contract of every activation-quantization spec here: the kernel's own results, as named outputs:
"q" [T, H] (float8_e4m3fn or int8, the quantized activations) and "s" (the fp32 scales, in the layout that
spec's kernels write; none for static_quant_fp8, whose scale is an input).  The timed call is the kernel alone:
no dequant epilogue.  q is compared as float values: an impl that matches the kernel formula lands on the
reference up to rare one-ulp rounding-boundary flips (one element moved by one quantization step), while a wrong
scale, a wrong group, a wrong rounding mode or an unwritten element moves whole groups or rows (see each spec's
`tolerance`).  s is the same fp32 formula (amax times or over a constant) for every provider: a tight bound.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance

FP8_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
INT8_MAX = 127.0
EPS = 1e-10  # the eps every upstream launcher passes by default


#: bound of every fp32 scale output: the same fp32 formula (amax times or over a constant) in every impl; the vLLM
#: (amax * (1/448)) and SGLang (amax / 448) fp8 formulas differ by <= 1 fp32 ulp (measured <= 1.2e-7 per scale)
SCALE_TOL = Tolerance(1e-6, "fp32 amax * or / a constant, same formula as ref; vLLM vs SGLang fp8 formulas differ "
                      "by <= 1 fp32 ulp (1.2e-7)", row_rel=1e-6,
                      row_source="each token's scales are the same formula: the same bound per row")

#: q of an e4m3 kernel, compared as float values.  One rounding-boundary flip moves one element by one fp8 step
#: (1/16..1/8 of its value, up to 32 for |q| in [256, 448]).  Global: the SGLang formula (amax / 448, x * (1/s))
#: lands 1.9e-3..3.6e-3 from the vLLM-formula ref (CPU emulation, seeds 0-3, H = 128..7168), no quantization
#: 2.6e-2 and a wrong group size >= 0.16.  Per row: two flips of a row's two largest elements give <= 3.6e-2 in a
#: row of H = 128 (<= 4.6e-2 for static fp8, where saturated +-448 elements flip to 416), the SGLang formula's worst
#: row 2.8e-2; a wrong row gives ~1, one zeroed group in a row of H = 7168 (56 groups) 0.13.
FP8_Q_ROW_REL = 6e-2
FP8_Q_ROW_SOURCE = ("one or two one-step flips in a row of H >= 128 stay <= 4.6e-2 (emulated); a wrong row ~1, "
                    "a zeroed group of 56 0.13")

#: q of an int8 kernel, compared as float values.  One flip moves one element by 1 (1/127 of its group's max).
#: Global 5e-3: rounding instead of truncating (group quant) or truncating instead of rounding (per-token quant)
#: lands >= 1.5e-2 away, no quantization 1.3e-2; a device division that truncates every group's max to 126 gives
#: 2e-3 and two flips in every row of H = 128 2.8e-3.  Per row 1e-2: two flips of a row's largest elements give
#: <= 4.1e-3 at H = 128, one flipped max per group 2.9e-3; a wrong row gives ~1, one zeroed group of 56 0.13.
INT8_Q_ROW_REL = 1e-2
INT8_Q_ROW_SOURCE = ("one or two one-step flips in a row of H >= 128 stay <= 4.1e-3 (emulated); a wrong row ~1, "
                     "a zeroed group of 56 0.13")


def token_cases(model: ModelShapes, quick: bool, extra: dict[str, int]) -> list[Case]:
    """One case per (regime, token count) of `model`, hidden width = hidden_size (activations entering a
    linear layer); `extra` adds fixed dims (e.g. the group size)."""
    if not model.has("hidden_size"):
        return []
    h = int(model.get("hidden_size"))
    out = []
    for regime in ("decode", "prefill"):
        for t in model.tokens(regime, quick=quick):
            out.append(Case(model=model.name, regime=regime, params={"T": t, "H": h, **extra}))
    return out


def random_activations(t: int, h: int, device: torch.device, seed: int) -> torch.Tensor:
    """bf16 [t, h] activations with a per-token spread of magnitudes (so groups get different scales) and
    no all-zero group."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(t, h, generator=g, device=device, dtype=torch.float32)
    row_scale = torch.exp(torch.randn(t, 1, generator=g, device=device, dtype=torch.float32))
    return (x * row_scale).to(torch.bfloat16)


def group_amax(x: torch.Tensor, group: int) -> torch.Tensor:
    """[T, H] -> [T, H // group, 1] fp32 max |x| per group, floored at EPS (as the kernels do)."""
    t, h = x.shape
    return x.float().view(t, h // group, group).abs().amax(dim=2, keepdim=True).clamp_min(EPS)


def fp8_group_quant(x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """vLLM `_per_token_group_quant_fp8`: s = max(amax, eps) * (1/448); q = fp8(clamp(x / s)).
    Returns q [T, H] float8_e4m3fn and s [T, H / group] fp32."""
    t, h = x.shape
    xg = x.float().view(t, h // group, group)
    s = group_amax(x, group) * (1.0 / FP8_MAX)
    q = (xg / s).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q.view(t, h), s.view(t, h // group)


def int8_group_quant(x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """vLLM / SGLang `_per_token_group_quant_int8`: s = max(amax, eps) / 127; q = int8(clamp(x / s, -128, 127))
    where Triton's float->int8 cast truncates toward zero (both upstream kernels use `.to(int8)`, no round).
    Returns q [T, H] int8 and s [T, H / group] fp32."""
    t, h = x.shape
    xg = x.float().view(t, h // group, group)
    s = group_amax(x, group) / INT8_MAX
    q = torch.trunc((xg / s).clamp(-128.0, INT8_MAX))
    return q.to(torch.int8).view(t, h), s.view(t, h // group)


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """CUDA libdevice `round`: halves away from zero (torch.round rounds halves to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def int8_token_quant(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """vLLM `_per_token_quant_int8`: s = max(amax, 1e-10) / 127; q = round(x * (127 / amax)).
    Returns q [T, H] int8 and s [T, 1] fp32."""
    amax = x.float().abs().amax(dim=1, keepdim=True).clamp_min(EPS)
    q = round_half_away(x.float() * (INT8_MAX / amax))
    return q.to(torch.int8), amax / INT8_MAX


def activation_inputs(case: Case, device: torch.device, seed: int) -> Inputs:
    p = case.params
    return {"x": random_activations(p["T"], p["H"], device, seed)}


# ------------------------------------------------------------------------------------------ AWQ 4-bit packing
# AutoAWQ packs 8 4-bit values per int32 column-wise in the interleaved order [0, 2, 4, 6, 1, 3, 5, 7]: nibble p
# (bits 4p..4p+3) holds logical column AWQ_ORDER[p] of the group of 8.  The Triton kernels undo it with the
# reverse order [0, 4, 1, 5, 2, 6, 3, 7] (logical column c sits at nibble AWQ_REVERSE[c]).
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
AWQ_REVERSE = (0, 4, 1, 5, 2, 6, 3, 7)


def awq_pack(v: torch.Tensor) -> torch.Tensor:
    """[R, C] ints in 0..15 -> [R, C // 8] int32 in AutoAWQ's order (two's complement wrap of bit 31)."""
    r, c = v.shape
    g = v.to(torch.int64).view(r, c // 8, 8)
    packed = torch.zeros(r, c // 8, dtype=torch.int64, device=v.device)
    for p, col in enumerate(AWQ_ORDER):
        packed |= g[:, :, col] << (4 * p)
    packed = torch.where(packed >= 2**31, packed - 2**32, packed)
    return packed.to(torch.int32)


def awq_unpack(packed: torch.Tensor) -> torch.Tensor:
    """[R, C // 8] int32 -> [R, C] int64 nibbles in logical column order."""
    p = packed.to(torch.int64) & 0xFFFFFFFF
    cols = [(p >> (4 * AWQ_REVERSE[c])) & 0xF for c in range(8)]
    return torch.stack(cols, dim=-1).reshape(packed.shape[0], -1)


def awq_dequant_ref(qweight: torch.Tensor, qzeros: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """W[k, n] = (w4[k, n] - z4[k // G, n]) * s[k // G, n] in fp32; G = K / scales.shape[0]."""
    w = awq_unpack(qweight).float()
    group = qweight.shape[0] // scales.shape[0]
    z = awq_unpack(qzeros).float().repeat_interleave(group, dim=0)
    s = scales.float().repeat_interleave(group, dim=0)
    return (w - z) * s


def awq_weight_inputs(k: int, n: int, group: int, device: torch.device, g: torch.Generator) -> Inputs:
    """Random AWQ int4 checkpoint tensors: qweight [K, N/8] int32, qzeros [K/G, N/8] int32, scales [K/G, N]
    fp16 (positive, ~ |w| / 8 so dequantized weights are O(1/sqrt(K)) like a real layer's)."""
    w4 = torch.randint(0, 16, (k, n), generator=g, device=device)
    z4 = torch.randint(0, 16, (k // group, n), generator=g, device=device)
    s = (torch.rand(k // group, n, generator=g, device=device) + 0.5) * (2.0 / (8 * k**0.5))
    return {"qweight": awq_pack(w4), "qzeros": awq_pack(z4), "scales": s.to(torch.float16)}


def awq_cases(model: ModelShapes) -> list[tuple[str, int, int]]:
    """(layer, K, N) of a dense-MLP model's linear layers at its TP (AWQ int4 checkpoints are dense models):
    gate_up (K = hidden, N = 2 * intermediate / tp) and down (K = intermediate / tp, N = hidden)."""
    if not (model.has("mlp.intermediate_size") and model.has("hidden_size")):
        return []
    h, inter = int(model.get("hidden_size")), int(model.get("mlp.intermediate_size")) // model.tp
    return [("gate_up", h, 2 * inter), ("down", inter, h)]


class GroupQuantSpec(KernelSpec):
    """Per-token-group activation quantization, group `GROUP`: the contract shared by the fp8 and int8 variants.
    Subclasses set id / catalog_rows / title / `Q_DTYPE` and implement `quant` (the exact q, s) and `tolerance`.
    Outputs: "q" [T, H] `Q_DTYPE`, "s" [T, H / G] fp32 row-major (`scale_buffer` gives the layout)."""

    category = "quantization"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)
    GROUP: ClassVar[int] = 128
    Q_DTYPE: ClassVar[torch.dtype]

    def quant(self, x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def scale_buffer(self, t: int, ng: int, device: torch.device) -> torch.Tensor:
        """The [T, NG] fp32 scale buffer in the layout the spec's kernels write: row-major here."""
        return torch.empty(t, ng, dtype=torch.float32, device=device)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return token_cases(model, quick, {"G": self.GROUP})

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 7, "H": 384, "G": self.GROUP}),
                Case("test", "test", {"T": 1, "H": 96, "G": 32})]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"T": 33, "H": 1024, "G": self.GROUP})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        if dtype != "bf16":
            raise ValueError(f"{self.id}: unknown dtype {dtype!r}; valid: bf16")
        return activation_inputs(case, device, seed)

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x = inputs["x"]
        t, h = x.shape
        return {"q": torch.empty(t, h, dtype=self.Q_DTYPE, device=x.device),
                "s": self.scale_buffer(t, h // case.params["G"], x.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        q, s = self.quant(inputs["x"], case.params["G"])
        return {"q": q, "s": s}

    def flops(self, case: Case) -> float:
        p = case.params
        return 3.0 * p["T"] * p["H"]  # |x| and max, divide (scale), per element

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["T"] * p["H"] * (2 + 1) + p["T"] * (p["H"] // p["G"]) * 4  # bf16 x in; 8-bit q, fp32 s out
