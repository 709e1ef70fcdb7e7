"""NSA compressed-branch attention, forward (catalog row 32, XunhaoLai native-sparse-attention-triton
`ops/triton/compressed_attention.py::compressed_attention`, its `forward_kernel`).

Math, per sequence of T tokens compressed with window l and stride d into Tc = (T - l) // d + 1 keys/values
(compressed entry i summarises tokens i*d .. i*d + l - 1, so it becomes visible once that window has ended):

    vis(t) = { i < Tc : i*d + l - 1 <= t }
    out[t, h] = sum_{i in vis(t)} softmax_i(q[t, h] . kc[i, h // G] * scale) vc[i, h // G]      (0 if vis(t) empty)

Shapes: q [N, Hq, D] packed tokens (N = sum of lengths); kc, vc [Nc, Hkv, D] packed compressed entries;
cu_seqlens_q [B + 1], cu_seqlens_k [B + 1] int32; out like q; scale D^-0.5.  The compressed K/V are the input (the
pooling that makes them, mean-pool or learned, is a separate kernel), drawn unit normal.  NSA's paper sizes l = 32,
d = 16.  The launcher can also rank blocks for the selection branch (its score_kernel + torch.topk); that part
returns integer indices whose order flips on near-ties under rounding, so this spec checks and times the attention
output only (the adapter passes topk=0, which skips the ranking).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import attention_tolerance, torch_dtype
from harness.specs.sparse._nsa_common import KERNEL_SIZE, KERNEL_STRIDE, nsa_heads, prefill_lengths


def seq_lens(p: dict) -> list[int]:
    """B sequences; the first is T long, ragged ones shrink by a deterministic stride (never below l)."""
    t, l_ = p["T"], p["l"]
    if not p.get("ragged", 0):
        return [t] * p["B"]
    return [max(l_, t - (i * 37) % max(1, t // 2)) if i else t for i in range(p["B"])]


def compressed_len(t: int, l_: int, d: int) -> int:
    """Compressed entries of a t-token sequence (the upstream's get_compressed_seqlens; 0 when t < l)."""
    return 0 if t < l_ else (t - l_) // d + 1


def visible(t: int, l_: int, d: int, tc: int) -> int:
    """Compressed entries query position t attends to."""
    return 0 if t < l_ - 1 else min(tc, (t - l_ + 1) // d + 1)


def _cu(lens: list[int], device: torch.device) -> torch.Tensor:
    cu = torch.zeros(len(lens) + 1, dtype=torch.int32, device=device)
    cu[1:] = torch.cumsum(torch.tensor(lens, dtype=torch.int32, device=device), 0)
    return cu


class NsaCompressedAttentionSpec(KernelSpec):
    id = "nsa_compressed_attention"
    category = "sparse"
    catalog_rows = (32,)
    token_dim = 'T'
    title = "NSA compressed attention (queries over pooled K/V windows, causal on window ends), forward"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = nsa_heads(model)
        if heads is None:
            return []
        return [Case(model.name, "prefill", {"B": 1, "T": t, "Hq": heads.q, "Hkv": heads.kv, "D": heads.head_dim,
                                             "l": KERNEL_SIZE, "d": KERNEL_STRIDE, "ragged": 0})
                for t in prefill_lengths(model, quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 3, "T": 41, "Hq": 4, "Hkv": 2, "D": 8, "l": 8, "d": 4, "ragged": 1}),
                Case("test", "test", {"B": 1, "T": 19, "Hq": 3, "Hkv": 1, "D": 16, "l": 4, "d": 4, "ragged": 0})]

    def check_cases(self) -> list[Case]:
        # the paper's l/d, two ragged sequences longer than the kernel's 128-query and 128-key tiles
        return [Case("check", "test", {"B": 2, "T": 2500, "Hq": 16, "Hkv": 2, "D": 64, "l": 32, "d": 16,
                                       "ragged": 1})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        g = torch.Generator(device=device).manual_seed(seed)
        lens = seq_lens(p)
        clens = [compressed_len(n, p["l"], p["d"]) for n in lens]
        q = torch.randn(sum(lens), p["Hq"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        k = torch.randn(sum(clens), p["Hkv"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        v = torch.randn(sum(clens), p["Hkv"], p["D"], generator=g, device=device, dtype=torch.float32).to(dt)
        return {"q": q, "k": k, "v": v, "cu_seqlens_q": _cu(lens, device), "cu_seqlens_k": _cu(clens, device),
                "max_seqlen_q": max(lens), "max_seqlen_k": max(clens), "kernel_size": p["l"],
                "kernel_stride": p["d"], "scale": p["D"] ** -0.5}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        l_, d = inputs["kernel_size"], inputs["kernel_stride"]
        hq, hkv = q.shape[1], k.shape[1]
        grp = hq // hkv
        out = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
        cq, ck = inputs["cu_seqlens_q"].tolist(), inputs["cu_seqlens_k"].tolist()
        with exact_fp32():
            for q0, q1, k0, k1 in zip(cq[:-1], cq[1:], ck[:-1], ck[1:]):
                if k1 == k0:
                    continue
                pos = torch.arange(q1 - q0, device=q.device)
                ends = torch.arange(k1 - k0, device=q.device) * d + l_ - 1
                mask = ends[None, :] <= pos[:, None]  # [Tq, Tc]
                seen = mask.any(dim=1)[None, :, None]
                for h in range(hkv):
                    qg = q[q0:q1, h * grp:(h + 1) * grp].float().transpose(0, 1)  # [G, Tq, D]
                    s = (qg @ k[k0:k1, h].float().t()) * inputs["scale"]
                    s.masked_fill_(~mask[None], float("-inf"))
                    o = torch.softmax(s, dim=-1).nan_to_num(0.0) @ v[k0:k1, h].float()
                    out[q0:q1, h * grp:(h + 1) * grp] = torch.where(seen, o, 0.0).transpose(0, 1)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        pairs = 0
        for n in seq_lens(p):
            tc = compressed_len(n, p["l"], p["d"])
            pairs += sum(visible(t, p["l"], p["d"], tc) for t in range(n))
        return 4.0 * pairs * p["Hq"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        lens = seq_lens(p)
        nc = sum(compressed_len(n, p["l"], p["d"]) for n in lens)
        return (2.0 * sum(lens) * p["Hq"] + 2.0 * nc * p["Hkv"]) * p["D"] * elt


SPEC = NsaCompressedAttentionSpec()
