"""Causal depthwise conv1d with SiLU, one decode token (catalog row 85: vLLM 0.33.0 `causal_conv1d_update` /
`_causal_conv1d_update_kernel`, vllm/model_executor/layers/mamba/ops/causal_conv1d.py).

Per request b and channel c, with the cached last W - 1 inputs s[b, c, 0..W-2] (oldest first):

    y[b, c] = silu(bias[c] + sum_{j < W - 1} w[c, j] s[b, c, j] + w[c, W - 1] x[b, c])
    s[b, c] <- (s[b, c, 1:], x[b, c])                  (the updated conv state)

Shapes: x [batch, dim]; conv_state [batch, dim, W - 1]; weight [dim, W]; bias [dim].  Named outputs: y [batch, dim]
and conv_state [batch, dim, W - 1] (the shifted window, exact), both compared.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance
from harness.specs.linear._common import generator, randn, torch_dtype
from harness.specs.linear.causal_conv1d import conv_dims, conv_inputs


class CausalConv1dUpdateSpec(KernelSpec):
    id = "causal_conv1d_update"
    category = "linear"
    catalog_rows = (85,)
    token_dim = 'batch'
    title = "Causal depthwise conv1d + SiLU, decode update (rolling conv state)"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        dims = conv_dims(model)
        if dims is None:
            return []
        return [Case(model.name, "decode", {"batch": t, **dims}) for t in model.tokens("decode", quick)]

    def test_cases(self) -> list[Case]:
        return [
            Case("test", "test", {"batch": 3, "dim": 5, "W": 4}),
            Case("test", "test", {"batch": 1, "dim": 3, "W": 2}),
        ]

    def check_cases(self) -> list[Case]:
        return [Case("check", "test", {"batch": 5, "dim": 600, "W": 4})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        inputs = conv_inputs((p["batch"], p["dim"]), p["dim"], p["W"], dtype, device, seed)
        gen = generator(device, seed + 1)
        inputs["conv_state"] = randn((p["batch"], p["dim"], p["W"] - 1), gen, device).to(torch_dtype(dtype))
        return inputs

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        x, state = inputs["x"], inputs["conv_state"]
        return {"y": torch.empty(x.shape, dtype=torch_dtype(dtype), device=x.device),
                "conv_state": torch.empty(state.shape, dtype=state.dtype, device=state.device)}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> dict[str, torch.Tensor]:
        window = torch.cat([inputs["conv_state"].float(), inputs["x"].float()[:, :, None]], dim=2)  # [b, dim, W]
        y = F.silu((window * inputs["weight"].float()[None]).sum(-1) + inputs["bias"].float())
        return {"y": y, "conv_state": window[:, :, 1:]}

    def tolerance(self, dtype: str) -> dict[str, Tolerance]:
        return {"y": Tolerance(5e-3, "bf16 output rounding of an fp32 W-tap sum"),
                "conv_state": Tolerance(0.0, "the shifted window: a copy of model-dtype inputs, exact")}

    def flops(self, case: Case) -> float:
        p = case.params
        return float(p["batch"] * p["dim"] * (2 * p["W"] + 4))

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype).itemsize
        state = 2 * p["batch"] * p["dim"] * (p["W"] - 1) * elt  # read and written back
        return float(2 * p["batch"] * p["dim"] * elt + p["dim"] * (p["W"] + 1) * elt + state)


SPEC = CausalConv1dUpdateSpec()
