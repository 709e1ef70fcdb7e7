"""Shared pieces of the attention specs: per-GPU head counts from a model YAML, LSE-carrying partial states,
paged-KV builders and an fp32 attention reference.

Conventions used by every attention spec here (adapters translate to their upstream's layout, untimed):
  * LSE is the natural-log log-sum-exp of the scaled scores, fp32, laid out [tokens, heads].  FlashInfer's
    Triton cascade kernels use base 2 (they call exp2/log2); its adapters multiply by log2(e) in prepare.
  * Paged KV cache is [num_blocks, page_size, num_kv_heads, head_dim] (vLLM v1 / SGLang flattened layout),
    with a block table [batch, max_blocks] int32 whose blocks are a random permutation, so a kernel that
    ignores the table reads the wrong keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from harness.shapes import ModelShapes
from harness.spec import Case

DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
LOG2E = 1.0 / math.log(2.0)
#: Decode KV footprint cap (tokens summed over the batch): B=512 x 131072 tokens would need ~34 GB per KV
#: tensor, and the fp32 reference several times that.  Cases above it are left out.
MAX_DECODE_KV_TOKENS = 1 << 22


def torch_dtype(dtype: str, kernel: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"{kernel}: unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    return DTYPES[dtype]


@dataclass(frozen=True)
class Heads:
    """Per-GPU attention heads of one model: query heads, KV heads (replicated when fewer than TP), head dim."""

    q: int
    kv: int
    head_dim: int


def gqa_heads(model: ModelShapes) -> Heads | None:
    """Per-GPU GQA heads, or None when the model has no GQA attention section."""
    if model.get("attention.kind", None) != "gqa":
        return None
    keys = ("attention.num_q_heads", "attention.num_kv_heads", "attention.head_dim")
    if not all(model.has(k) for k in keys):
        return None
    tp = model.tp
    hq, hkv, d = (int(model.get(k)) for k in keys)
    # vLLM shards query heads over TP and replicates KV heads when there are fewer than TP of them
    return Heads(q=max(1, hq // tp), kv=max(1, hkv // tp), head_dim=d)


def merged_heads(model: ModelShapes) -> Heads | None:
    """Heads whose partial outputs get merged: GQA heads, or MLA's per-GPU query heads with the V head dim
    (vLLM's MLA chunked-prefill path merges prefix/suffix outputs of width v_head_dim)."""
    gqa = gqa_heads(model)
    if gqa is not None:
        return gqa
    if model.get("attention.kind", None) == "mla" and model.has("attention.num_q_heads") \
            and model.has("mla.v_head_dim"):
        hq = max(1, int(model.get("attention.num_q_heads")) // model.tp)
        return Heads(q=hq, kv=hq, head_dim=int(model.get("mla.v_head_dim")))
    return None


def token_cases(model: ModelShapes, heads: Heads | None, quick: bool, extra: dict[str, int] | None = None
                ) -> list[Case]:
    """One case per decode and prefill token count: {"T", "H", "D", **extra}."""
    if heads is None:
        return []
    out = []
    for regime in ("decode", "prefill"):
        for t in model.tokens(regime, quick=quick):
            out.append(Case(model.name, regime, {"T": t, "H": heads.q, "D": heads.head_dim, **(extra or {})}))
    return out


def decode_kv_lens(model: ModelShapes, quick: bool) -> list[int]:
    lens = [int(x) for x in model.get("regimes.decode.kv_lens", [])]
    if quick and lens:
        return [lens[min(1, len(lens) - 1)]]  # one realistic context (8192 in every shipped model)
    return lens


def random_states(n: int, h: int, d: int, g: torch.Generator, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A partial attention state: output rows [n, h, d] (softmax-weighted means of unit-normal values, so
    magnitude ~1/sqrt(len) .. 1) and natural LSEs [n, h] fp32 spread over several units, as the LSEs of
    partial softmaxes over different KV chunk lengths are."""
    v = torch.randn(n, h, d, generator=g, device=device, dtype=torch.float32) * 0.5
    lse = torch.randn(n, h, generator=g, device=device, dtype=torch.float32) * 2.0 + 5.0
    return v, lse


def merge_reference(vs: list[torch.Tensor], lses: list[torch.Tensor]) -> torch.Tensor:
    """out = sum_i exp(lse_i - lse_all) * v_i in fp64, lse_all = logsumexp_i lse_i (LSEs natural, [n, h])."""
    lse = torch.stack([s.double() for s in lses])  # [S, n, h]
    w = torch.softmax(lse, dim=0)
    return sum(w[i][..., None] * vs[i].double() for i in range(len(vs))).float()


def merge_tolerance(dtype: str) -> tuple[float, str]:
    """A merge is an fp32 convex combination of low-precision values, rounded once at the store."""
    if dtype == "bf16":
        # measured: vLLM merge_attn_states under TRITON_INTERPRET on CPU, 3.2e-3..3.4e-3
        return 8e-3, "bf16 inputs and output (unit roundoff 2^-8), fp32 combine: one rounding each"
    if dtype == "fp16":
        return 2e-3, "fp16 inputs and output (unit roundoff 2^-11), fp32 combine: one rounding each"
    return 1e-5, "fp32 throughout"


# ---------------------------------------------------------------------------------------------- paged KV


@dataclass
class PagedKV:
    k_cache: torch.Tensor  # [num_blocks, page, Hkv, D]
    v_cache: torch.Tensor  # [num_blocks, page, Hkv, D]
    block_table: torch.Tensor  # [B, max_blocks] int32
    seq_lens: torch.Tensor  # [B] int32


def build_paged_kv(seq_lens: list[int], page: int, hkv: int, d: int, dtype: torch.dtype, g: torch.Generator,
                   device: torch.device) -> PagedKV:
    """Random unit-normal K and V scattered into pages in a random block order (one spare block)."""
    blocks_per = [math.ceil(s / page) for s in seq_lens]
    max_blocks = max(blocks_per)
    num_blocks = sum(blocks_per) + 1
    perm = torch.randperm(num_blocks, generator=g, device=device).to(torch.int32)
    table = torch.zeros(len(seq_lens), max_blocks, dtype=torch.int32, device=device)
    pos = 0
    for b, nb in enumerate(blocks_per):
        table[b, :nb] = perm[pos:pos + nb]
        # unused table slots point at a real block (as vLLM's padded tables do); kernels must not read them
        table[b, nb:] = perm[-1]
        pos += nb
    k = torch.randn(num_blocks, page, hkv, d, generator=g, device=device, dtype=torch.float32).to(dtype)
    v = torch.randn(num_blocks, page, hkv, d, generator=g, device=device, dtype=torch.float32).to(dtype)
    lens = torch.tensor(seq_lens, dtype=torch.int32, device=device)
    return PagedKV(k, v, table, lens)


def gather_kv(kv: PagedKV, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence b's K and V as [len, Hkv, D] (the pages of its block table, in order)."""
    n = int(kv.seq_lens[b])
    page = kv.k_cache.shape[1]
    blocks = kv.block_table[b, :math.ceil(n / page)].long()
    k = kv.k_cache[blocks].flatten(0, 1)[:n]
    v = kv.v_cache[blocks].flatten(0, 1)[:n]
    return k, v


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool
                        ) -> torch.Tensor:
    """fp32 softmax attention of one sequence with GQA: q [Tq, Hq, D], k/v [Tk, Hkv, D] -> [Tq, Hq, D] fp32.
    causal aligns the last query with the last key (query i sees keys <= i + Tk - Tq).  One query head at a
    time, so a 16k-token prefill needs one [Tq, Tk] score matrix, not Hq of them."""
    tq, hq, _ = q.shape
    tk, hkv, _ = k.shape
    group = hq // hkv
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
    mask = None
    if causal:
        qi = torch.arange(tq, device=q.device)[:, None] + (tk - tq)
        mask = torch.arange(tk, device=q.device)[None, :] > qi
    for h in range(hq):
        kf, vf = k[:, h // group].float(), v[:, h // group].float()
        s = (q[:, h].float() @ kf.t()) * scale
        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))
        out[:, h] = torch.softmax(s, dim=-1) @ vf
    return out


def attention_tolerance(dtype: str) -> tuple[float, str]:
    if dtype == "bf16":
        # P is rounded to bf16 before the PV GEMM in every Triton flash kernel (~2^-9 per weight), plus the
        # bf16 output store; measured norms of flash kernels vs fp32 land at 3e-3..6e-3.
        return 1.5e-2, "bf16 Q/K/V and P operands, fp32 accumulate and softmax, bf16 output"
    if dtype == "fp16":
        return 4e-3, "fp16 Q/K/V and P operands, fp32 accumulate and softmax, fp16 output"
    return 1e-4, "fp32 (TF32 may be used by tl.dot)"


def causal_chunk_flops(q_lens: list[int], kv_lens: list[int], hq: int, d: int) -> float:
    """QK^T and PV FLOPs of causal attention where each sequence's q_len new tokens are its last ones: each new
    token sees the context before the chunk plus the chunk up to itself."""
    pairs = sum(q * (n - q) + q * (q + 1) / 2 for q, n in zip(q_lens, kv_lens))
    return 4.0 * pairs * hq * d


def chunk_attention_bytes(q_lens: list[int], kv_lens: list[int], hq: int, hkv: int, d: int, elt: int) -> float:
    """Fewest bytes of that attention: every sequence's K and V once, q read and out written once."""
    return 2.0 * sum(kv_lens) * hkv * d * elt + 2.0 * sum(q_lens) * hq * d * elt
