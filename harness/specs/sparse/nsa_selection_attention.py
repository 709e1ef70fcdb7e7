"""NSA selected-block (top-n block sparse) attention, forward (catalog rows 31 XunhaoLai native-sparse-attention-
triton `topk_sparse_attention`, 33 fla `fla.ops.nsa.parallel.parallel_nsa`, 34 tilde-research nsa-impl
`selection_attention`).

Math, per batch row b, query token t, KV head h and each query head i of h's group (G = Hq / Hkv, heads
i = h*G .. h*G + G - 1), with block size BS and the group's selected blocks I[b, t, h, :] (-1 = none):

    keys(t) = { j : j // BS in I[b, t, h, :] and j <= t }
    out[b, t, i] = sum_{j in keys(t)} softmax_j(q[b, t, i] . k[b, j, h] * scale) v[b, j, h]

Shapes: q [B, T, Hq, D]; k, v [B, T, Hkv, D]; block_indices [B, T, Hkv, S] int32; out [B, T, Hq, D]; scale
D^-0.5.  Every row of the batch is one sequence of T tokens (adapters flatten to varlen where the upstream wants
cu_seqlens).  Indices as NSA's selection emits them: distinct, only blocks at or before the token's own block,
the own block always among them, valid entries first in ascending order, then -1 padding (a token in block c
has min(S, c + 1) valid entries).  NSA's paper sizes: BS = 64, S = 16 (harness/specs/sparse/_nsa_common.py).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Inputs, KernelSpec, Tolerance, exact_fp32
from harness.specs.attention._common import attention_tolerance, torch_dtype
from harness.specs.sparse._nsa_common import BLOCK_SIZE, TOP_N, nsa_heads, prefill_lengths

#: fp32 score elements per reference chunk ([G, chunk, T]); 2^26 x 4 bytes = 256 MiB
_REF_CHUNK_ELEMS = 1 << 26


def select_blocks(b: int, t: int, hkv: int, bs: int, s: int, g: torch.Generator, device: torch.device
                  ) -> torch.Tensor:
    """Random valid selections [b, t, hkv, s] int32: own block + random distinct earlier ones, sorted, -1 pad."""
    nb = math.ceil(t / bs)
    own = (torch.arange(t, device=device) // bs)[None, :, None, None]  # [1, t, 1, 1]
    blk = torch.arange(nb, device=device)
    r = torch.rand(b, t, hkv, nb, generator=g, device=device)
    r = torch.where(blk == own, 2.0, r)  # own block: always the top score
    r = torch.where(blk > own, -1.0, r)  # future blocks: never valid
    top_r, top_i = r.topk(min(s, nb), dim=-1)
    idx = torch.where(top_r < 0, nb, top_i)  # invalid -> nb, sorts last
    if s > nb:
        idx = torch.cat([idx, idx.new_full((b, t, hkv, s - nb), nb)], dim=-1)
    idx = idx.sort(dim=-1).values
    return torch.where(idx == nb, -1, idx).to(torch.int32)


def keys_per_token(t: int, bs: int, s: int) -> int:
    """Keys a query token at position t attends to: its own block up to itself plus min(S, c + 1) - 1 full
    earlier blocks (c = t // BS)."""
    return t % bs + 1 + (min(s, t // bs + 1) - 1) * bs


def selection_mask(idx: torch.Tensor, t: int, bs: int) -> torch.Tensor:
    """[t, t] bool, [query, key]: key in a selected block of the query and key <= query.  idx [t, S] (-1 pad)."""
    nb = math.ceil(t / bs)
    sel = torch.zeros(t, nb + 1, dtype=torch.bool, device=idx.device)
    sel.scatter_(1, torch.where(idx < 0, nb, idx.long()), True)
    pos = torch.arange(t, device=idx.device)
    return sel[:, pos // bs] & (pos[None, :] <= pos[:, None])


class NsaSelectionAttentionSpec(KernelSpec):
    id = "nsa_selection_attention"
    category = "sparse"
    catalog_rows = (31, 33, 34)
    token_dim = 'T'
    title = "NSA selected-block attention (top-n KV blocks per token and KV-head group, causal), forward"
    dtypes: ClassVar[tuple[str, ...]] = ("bf16",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        heads = nsa_heads(model)
        if heads is None:
            return []
        return [Case(model.name, "prefill", {"B": 1, "T": t, "Hq": heads.q, "Hkv": heads.kv, "D": heads.head_dim,
                                             "BS": BLOCK_SIZE, "S": TOP_N})
                for t in prefill_lengths(model, quick)]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"B": 2, "T": 45, "Hq": 4, "Hkv": 2, "D": 8, "BS": 8, "S": 3}),
                Case("test", "test", {"B": 1, "T": 23, "Hq": 3, "Hkv": 1, "D": 16, "BS": 4, "S": 2})]

    def check_cases(self) -> list[Case]:
        # a group of 16 (fla's minimum), T not a multiple of the block, odd S, two sequences
        return [Case("check", "test", {"B": 2, "T": 300, "Hq": 32, "Hkv": 2, "D": 64, "BS": 32, "S": 5})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        p = case.params
        dt = torch_dtype(dtype, self.id)
        b, t, hq, hkv, d = p["B"], p["T"], p["Hq"], p["Hkv"], p["D"]
        g = torch.Generator(device=device).manual_seed(seed)
        q = torch.randn(b, t, hq, d, generator=g, device=device, dtype=torch.float32).to(dt)
        k = torch.randn(b, t, hkv, d, generator=g, device=device, dtype=torch.float32).to(dt)
        v = torch.randn(b, t, hkv, d, generator=g, device=device, dtype=torch.float32).to(dt)
        idx = select_blocks(b, t, hkv, p["BS"], p["S"], g, device)
        return {"q": q, "k": k, "v": v, "block_indices": idx, "block_size": p["BS"], "scale": d ** -0.5}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["q"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        """Dense fp32 attention of each KV-head group under the selection mask (query chunks bound memory)."""
        q, k, v, idx = inputs["q"], inputs["k"], inputs["v"], inputs["block_indices"]
        b, t, hq, _ = q.shape
        hkv = k.shape[2]
        grp = hq // hkv
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        chunk = max(1, _REF_CHUNK_ELEMS // (grp * t))
        with exact_fp32():
            for bi in range(b):
                for h in range(hkv):
                    mask = selection_mask(idx[bi, :, h], t, inputs["block_size"])
                    kf, vf = k[bi, :, h].float(), v[bi, :, h].float()
                    for c0 in range(0, t, chunk):
                        c1 = min(t, c0 + chunk)
                        qg = q[bi, c0:c1, h * grp:(h + 1) * grp].float().transpose(0, 1)  # [G, c, D]
                        s = (qg @ kf.t()) * inputs["scale"]  # [G, c, T]
                        s.masked_fill_(~mask[c0:c1][None], float("-inf"))
                        out[bi, c0:c1, h * grp:(h + 1) * grp] = (torch.softmax(s, dim=-1) @ vf).transpose(0, 1)
        return out

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(*attention_tolerance(dtype))

    def flops(self, case: Case) -> float:
        p = case.params
        pairs = sum(keys_per_token(i, p["BS"], p["S"]) for i in range(p["T"]))  # (query, key) pairs per head
        return 4.0 * p["B"] * pairs * p["Hq"] * p["D"]

    def bytes(self, case: Case, dtype: str) -> float:
        p = case.params
        elt = torch_dtype(dtype, self.id).itemsize
        n = p["B"] * p["T"]
        return n * p["D"] * elt * (2.0 * p["Hq"] + 2.0 * p["Hkv"]) + n * p["Hkv"] * p["S"] * 4.0


SPEC = NsaSelectionAttentionSpec()
