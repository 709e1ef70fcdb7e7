"""Causal depthwise conv1d with SiLU, prefill (catalog row 85: vLLM 0.33.0 `causal_conv1d_fn` /
`_causal_conv1d_fwd_kernel`, vllm/model_executor/layers/mamba/ops/causal_conv1d.py).

The short convolution in front of every Mamba-2 SSD and Gated DeltaNet / KDA layer.  Per sequence (a fresh
prefill: the W - 1 positions before the first token are zero), channel c, token t:

    y[t, c] = silu(bias[c] + sum_{j < W} w[c, j] * x[t - (W - 1) + j, c])

Shapes: `batch` sequences of T tokens packed token-major, x [L, dim] (L = batch * T; the kernel reads it
channel-last as [dim, L], the view serving passes); weight [dim, W]; bias [dim].  Named outputs: y [L, dim] and
conv_state [batch, dim, W - 1], each sequence's last W - 1 inputs (oldest first, zeros before a sequence shorter
than W - 1) as the kernel writes them into the sequence's conv-state cache line; both compared.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import generator, randn, torch_dtype


def conv_dims(model: ModelShapes) -> dict[str, int] | None:
    """Per-GPU conv channels and width of the model's short conv, or None without one.

    mamba2          d_inner + 2 ngroups d_state (x, B, C convolved together), width ssm.d_conv
    gated_deltanet  2 num_k_heads head_k_dim + num_v_heads head_v_dim (q, k, v together), width conv_kernel
    kda             num_heads head_k_dim: Kimi Linear convolves q, k and v separately, one such conv each
    """
    tp = model.tp
    if model.get("ssm.kind", None) == "mamba2":
        dim = model.get("ssm.d_inner") + 2 * model.get("ssm.ngroups") * model.get("ssm.d_state")
        width = model.get("ssm.d_conv")
    elif model.get("linear_attention.kind", None) == "gated_deltanet":
        dim = (2 * model.get("linear_attention.num_k_heads") * model.get("linear_attention.head_k_dim")
               + model.get("linear_attention.num_v_heads") * model.get("linear_attention.head_v_dim"))
        width = model.get("linear_attention.conv_kernel")
    elif model.get("linear_attention.kind", None) == "kda":
        dim = model.get("linear_attention.num_heads") * model.get("linear_attention.head_k_dim")
        width = model.get("linear_attention.conv_kernel")
    else:
        return None
    if dim % tp:
        return None
    return {"dim": dim // tp, "W": width}


def conv_inputs(shape_x: tuple[int, ...], dim: int, width: int, dtype: str, device: torch.device,
                seed: int) -> Inputs:
    """x, weight and bias: x ~ N(0, 1); weight ~ U(-1/sqrt(W), 1/sqrt(W)) as nn.Conv1d initializes a depthwise
    conv (fan_in = W); bias likewise, so no tap or the bias is negligible."""
    dt = torch_dtype(dtype)
    gen = generator(device, seed)
    bound = width ** -0.5
    return {
        "x": randn(shape_x, gen, device).to(dt),
        "weight": ((torch.rand((dim, width), generator=gen, device=device) * 2 - 1) * bound).to(dt),
        "bias": ((torch.rand((dim,), generator=gen, device=device) * 2 - 1) * bound).to(dt),
    }


class CausalConv1dSpec(KernelSpec):
    id = "causal_conv1d"
    category = "linear"
    catalog_rows = (85,)
    token_dim = 'T'
    title = "Causal depthwise conv1d + SiLU, prefill (varlen)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = conv_dims(model)
        if dims is None:
            return []
        return [Case(model.name, "prefill", {"batch": 1, "T": t, **dims}) for t in model.tokens("prefill", quick)]

    def test_cases(self) -> list[Case]:
        return [
            Case("test", "test", {"batch": 2, "T": 7, "dim": 5, "W": 4}),
            Case("test", "test", {"batch": 3, "T": 2, "dim": 3, "W": 3}),  # sequences shorter than the window
        ]

    def check_cases(self) -> list[Case]:
        # three sequences, lengths not a multiple of the kernel's BLOCK_M (8), dim not a multiple of BLOCK_N (256)
        return [Case("check", "test", {"batch": 3, "T": 37, "dim": 600, "W": 4})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        inputs = conv_inputs((p["batch"] * p["T"], p["dim"]), p["dim"], p["W"], dtype, device, seed)
        inputs["query_start_loc"] = torch.arange(0, (p["batch"] + 1) * p["T"], p["T"], dtype=torch.int32,
                                                 device=device)
        return inputs

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x, (dim, width) = inputs["x"], inputs["weight"].shape
        batch = inputs["query_start_loc"].numel() - 1
        return {"y": torch.empty(x.shape, dtype=torch_dtype(dtype), device=x.device),
                "conv_state": torch.empty((batch, dim, width - 1), dtype=x.dtype, device=x.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        w = inputs["weight"].float()
        width = w.shape[1]
        out = torch.empty(inputs["x"].shape, dtype=torch.float32, device=inputs["x"].device)
        bounds = inputs["query_start_loc"].tolist()
        states = torch.empty((len(bounds) - 1, w.shape[0], width - 1), dtype=torch.float32, device=w.device)
        for n, (s, e) in enumerate(zip(bounds[:-1], bounds[1:])):
            xs = F.pad(inputs["x"][s:e].float().t()[None], (width - 1, 0))  # [1, dim, W - 1 + T]
            y = F.conv1d(xs, w[:, None, :], inputs["bias"].float(), groups=w.shape[0])
            out[s:e] = F.silu(y[0]).t()
            states[n] = xs[0, :, xs.shape[2] - (width - 1):]
        return {"y": out, "conv_state": states}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        # 4 products accumulated in fp32 then rounded to bf16: ~1e-3 relative RMS.  A shifted tap, a dropped
        # bias or a missing SiLU gives > 5e-2.  The conv state is a copy of inputs: exact.
        return {"y": Tolerance(5e-3, "bf16 output rounding of an fp32 4-tap sum"),
                "conv_state": Tolerance(0.0, "a copy of each sequence's last inputs, exact")}

    def flops(self, case: Case) -> float:
        p = case.params
        return float(p["batch"] * p["T"] * p["dim"] * (2 * p["W"] + 4))  # taps + bias, SiLU ~ 4

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        tokens = p["batch"] * p["T"]
        state = p["batch"] * p["dim"] * (p["W"] - 1) * elt  # written per sequence
        return float(2 * tokens * p["dim"] * elt + p["dim"] * (p["W"] + 1) * elt + state)


SPEC = CausalConv1dSpec()
