"""Gumbel-max sampling with counter-based noise (catalog row 102, vLLM v1 GPU worker `_gumbel_sample_kernel` via
`gumbel_sample`, sample/gumbel.py).

The sampler is deterministic given its inputs: the noise of token v for row t is a hash of (seed of the row's
request, position pos[t], v) (murmur3 finalizer, 32-bit), so the contract is the sampled token ids:

    u = murmur3_uniform32(seed_i, pos_t, v)                       in (0, 1), 32-bit resolution
    g = -log(-log1p(-u))  (vLLM's stable fp32 form: a degree-8 series for u < 0.25, else log(1 - u))
    out[t] = argmax_v (logits[t, v] / T_i + g)      for T_i != 0;    out[t] = argmax_v logits[t, v] for T_i = 0

with i = mapping[t] (request-state slot), T = temperature table, apply_temperature=True, not drafting, fp32.
The reference re-implements the hash with exact 32-bit integer arithmetic in torch (int64 lanes) and the
noise in fp32, in the kernel's operation order; what can differ on the device is one ulp in log / fused
multiply-adds, which changes the argmax only when two perturbed scores tie within ~1e-6 (not seen at these
sizes).

Shapes: logits [B, V] fp32; mapping [B] int32; temperature, seeds [MAX_NUM_REQS] fp32 / int64; pos [B] int64;
out [B] int64 (exact check).
"""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Tolerance
from harness.specs.sampling._common import MAX_NUM_REQS, LogitsSpec, random_logits, state_mapping

M32 = 0xFFFFFFFF


def _mul32(a: torch.Tensor, c: int) -> torch.Tensor:
    """(a * c) mod 2^32 for 0 <= a < 2^32 without overflowing int64: split a into 16-bit halves."""
    lo = (a & 0xFFFF) * c
    hi = (((a >> 16) * c) & 0xFFFF) << 16
    return (lo + hi) & M32


def _rotl(v: torch.Tensor, s: int) -> torch.Tensor:
    return ((v << s) & M32) | (v >> (32 - s))


def _mix(h: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    key = _mul32(key, 0xCC9E2D51)
    key = _rotl(key, 15)
    key = _mul32(key, 0x1B873593)
    h = _rotl(h ^ key, 13)
    return (_mul32(h, 5) + 0xE6546B64) & M32


def _fmix(h: torch.Tensor) -> torch.Tensor:
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def murmur3_hash32(seed: torch.Tensor, pos: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """vLLM's murmur3_hash32 (domain 0) on int64 tensors holding uint32 values; broadcasts."""
    h = torch.zeros_like(offset)
    h = _mix(h, seed & M32)
    h = _mix(h, (seed >> 32) & M32)
    h = _mix(h, pos & M32)
    h = _mix(h, offset & M32)
    return _fmix(h ^ 16)


def murmur3_uniform32(seed: torch.Tensor, pos: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    r = murmur3_hash32(seed, pos, offset)
    hi16 = (r >> 16).to(torch.float32)
    lo16 = (r & 0xFFFF).to(torch.float32)
    return hi16 * 1.52587890625e-05 + (lo16 + 0.5) * 2.3283064365386963e-10


def gumbel_noise(u: torch.Tensor) -> torch.Tensor:
    """-log(-log1p(-u)) as vLLM's fp32 path forms it (`_log1p_neg_stable`)."""
    poly = torch.full_like(u, 1.0 / 8.0)
    for c in (1.0 / 7.0, 1.0 / 6.0, 1.0 / 5.0, 1.0 / 4.0, 1.0 / 3.0, 1.0 / 2.0, 1.0):
        poly = c + u * poly
    series = -u * poly
    direct = torch.log(torch.clamp(1.0 - u, min=5.960464477539063e-08))
    return -torch.log(-torch.where(u < 0.25, series, direct))


class GumbelSampleSpec(LogitsSpec):
    id = "gumbel_sample"
    catalog_rows = (102,)
    token_dim = 'B'
    title = "Gumbel-max sampling with hashed per-(request, position, token) noise, temperature applied"

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 9, "V": 3000}), Case("test", "test", {"B": 1, "V": 77})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        g = self.generator(dtype, device, seed)
        temp = 0.3 + 1.2 * torch.rand(MAX_NUM_REQS, generator=g, device=device)
        greedy = torch.rand(MAX_NUM_REQS, generator=g, device=device) < 0.1
        return {"logits": random_logits(p["B"], p["V"], device, g), "mapping": state_mapping(p["B"], device, g),
                "temperature": torch.where(greedy, torch.zeros_like(temp), temp),
                "seeds": torch.randint(0, 2**62, (MAX_NUM_REQS,), generator=g, device=device),
                "pos": torch.randint(0, 32768, (p["B"],), generator=g, device=device)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty(case.params["B"], dtype=torch.int64, device=inputs["logits"].device)

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        logits = inputs["logits"]
        b, v = logits.shape
        idx = inputs["mapping"].long()
        temp = inputs["temperature"][idx][:, None]
        seed = inputs["seeds"][idx][:, None]
        pos = inputs["pos"][:, None]
        keys = torch.arange(v, device=logits.device)[None, :]
        noise = gumbel_noise(murmur3_uniform32(seed, pos, keys))
        sampling = temp != 0
        scores = torch.where(sampling, logits / torch.where(sampling, temp, torch.ones_like(temp)) + noise, logits)
        return scores.argmax(dim=1).double()

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(0.0, "token ids: exact (noise is a deterministic hash)")

    def flops(self, case: Case) -> float:
        p = case.params
        return 40.0 * p["B"] * p["V"]  # ~30 integer ops of hashing + logs per element

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        return p["B"] * p["V"] * 4 + p["B"] * (4 + 8 + 8 + 4 + 8)


SPEC = GumbelSampleSpec()
