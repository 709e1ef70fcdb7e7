"""Temperature scaling of logits (catalog row 50, vLLM v1 GPU worker `_temperature_kernel` via
`apply_temperature`, sample/gumbel.py).

Math, row t with request state i = mapping[t] and temperature T_i:

    out[t] = logits[t] / T_i      unless T_i is 0 (greedy) or 1, where the row is left unchanged

Shapes: logits [B, V] fp32; mapping [B] int32 into the per-request table temperature [MAX_NUM_REQS] fp32 (about
a quarter of the rows greedy or at 1.0, the rest in [0.1, 2)); out [B, V] fp32.

The kernel works in place, so an impl's call copies logits into the output buffer and then runs the kernel on
it (the copy is in that provider's timed call; bytes() counts only the contract's logits in + out).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Tolerance
from harness.specs.sampling._common import MAX_NUM_REQS, LogitsSpec, random_logits, state_mapping


class TemperatureSpec(LogitsSpec):
    id = "temperature"
    catalog_rows = (50,)
    token_dim = 'B'
    title = "Per-request temperature scaling of logits (0 and 1 skip the row)"
    CHECK_V = 20000  # > 2 blocks of 8192 per row

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 9, "V": 1000}), Case("test", "test", {"B": 1, "V": 77})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        g = self.generator(dtype, device, seed)
        temp = 0.1 + 1.9 * torch.rand(MAX_NUM_REQS, generator=g, device=device)
        pick = torch.rand(MAX_NUM_REQS, generator=g, device=device)
        temp = torch.where(pick < 0.12, torch.zeros_like(temp), torch.where(pick < 0.25, torch.ones_like(temp), temp))
        return {"logits": random_logits(p["B"], p["V"], device, g), "mapping": state_mapping(p["B"], device, g),
                "temperature": temp}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["logits"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        t = inputs["temperature"][inputs["mapping"].long()].double()[:, None]
        skip = (t == 0) | (t == 1)
        logits = inputs["logits"].double()
        return torch.where(skip, logits, logits / torch.where(skip, torch.ones_like(t), t))

    def tolerance(self, dtype: str) -> Tolerance:
        # one fp32 division per element (the device may divide approximately, <= 2 ulp); a skipped or
        # misindexed temperature is >= 1e-2.
        return Tolerance(1e-6, "one fp32 division")

    def flops(self, case: Case) -> float:
        p = case.params
        return float(p["B"] * p["V"])

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        # contract minimum: logits read once, out written once, mapping + the gathered temperature per row (not
        # the upstream's copy into out before its in-place pass)
        return p["B"] * p["V"] * 4 * 2 + p["B"] * (4 + 4)


SPEC = TemperatureSpec()
