"""Shared pieces of the multi-LoRA specs (punica-style batched LoRA): cases, the token -> adapter mapping, and
the per-token math both specs are written from.

A batch of T tokens comes from requests that each use one of L resident adapters or none (-1: the base
model only).  Requests are contiguous runs of tokens, as the scheduler lays them out.
"""

from __future__ import annotations

import torch

from harness.shapes import ModelShapes
from harness.spec import Case

RANKS = (16, 64)  # common served adapter ranks
MAX_LORAS = 4  # resident adapters (vLLM --max-loras default is 1; multi-LoRA serving runs a few)
SCALE = 0.5  # alpha / rank of the adapters (any non-trivial value: the kernels apply it)


def lora_cases(model: ModelShapes, quick: bool) -> list[Case]:
    """LoRA on a layer whose input and output width is hidden_size (o_proj / down_proj output side), one slice,
    every decode and prefill token count, ranks 16 and 64 (quick: 16 only)."""
    if not model.has("hidden_size"):
        return []
    h = int(model.get("hidden_size"))
    ranks = RANKS[:1] if quick else RANKS
    return [Case(model.name, regime, {"T": t, "H": h, "N": h, "r": r, "L": MAX_LORAS, "S": 1})
            for regime in ("decode", "prefill") for t in model.tokens(regime, quick=quick) for r in ranks]


def token_lora_mapping(t: int, num_loras: int, device: torch.device, g: torch.Generator) -> torch.Tensor:
    """[T] int32 adapter id per token in -1..L-1: runs of 1..8 tokens (requests) with random ids; when T > 1 at
    least one run uses the base model (-1) and at least one an adapter."""
    ids = torch.empty(t, dtype=torch.int32)
    pos = 0
    cpu = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device)))
    while pos < t:
        n = int(torch.randint(1, 9, (1,), generator=cpu))
        ids[pos:pos + n] = int(torch.randint(-1, num_loras, (1,), generator=cpu))
        pos += n
    if t > 1:
        ids[0], ids[-1] = -1, num_loras - 1
    else:
        ids[0] = 0
    return ids.to(device)


def shrink_math(x: torch.Tensor, lora_a: torch.Tensor, mapping: torch.Tensor, scale: float) -> torch.Tensor:
    """out[s, t] = scale * lora_a[s, mapping[t]] @ x[t] (0 where mapping[t] == -1); lora_a [S, L, r, H]; fp32."""
    s_, _, r, _ = lora_a.shape
    out = torch.zeros(s_, x.shape[0], r, dtype=torch.float32, device=x.device)
    for lora in torch.unique(mapping).tolist():
        if lora < 0:
            continue
        rows = (mapping == lora).nonzero()[:, 0]
        for s in range(s_):
            out[s, rows] = scale * (x[rows].float() @ lora_a[s, lora].float().t())
    return out


def expand_math(buf: torch.Tensor, lora_b: torch.Tensor, mapping: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """y = base + concat_s(buf[s, t] @ lora_b[s, mapping[t]].T) (base only where mapping[t] == -1); lora_b
    [S, L, N, r]; fp32."""
    s_, _, n, _ = lora_b.shape
    out = base.float().clone()
    for lora in torch.unique(mapping).tolist():
        if lora < 0:
            continue
        rows = (mapping == lora).nonzero()[:, 0]
        for s in range(s_):
            out[rows, s * n:(s + 1) * n] += buf[s, rows].float() @ lora_b[s, lora].float().t()
    return out


# ------------------------------------------------------------------------------------ SGLang's segment layout
#
# SGLang keeps LoRA weights per adapter with the slices of a merged layer stacked: A [L, S*r, H] (q/k/v or
# gate/up rank blocks on rows), B [L, N_0 + ... + N_{S-1}, r] (slice outputs on rows).  The shrink output and the
# expand input are one bf16 [T, S*r] buffer (slice s in columns s*r .. (s+1)*r), and the expand kernels apply the
# adapter's scaling (lora_alpha / r) themselves.  The batch arrives as requests (contiguous token runs), each with
# one adapter or the base model; the upstream adapters turn that into LoRABatchInfo segments.

#: merged-layer kinds: how many slices share one A/B pair (SGLang's stack_num / n_slices)
LAYER_SLICES = {"proj": 1, "gate_up": 2, "qkv": 3}
MAX_PREFILL_REQUESTS = 8  # requests in one prefill batch (a chunked-prefill step mixes a few long prompts)


def slice_widths(params: dict) -> list[int]:
    """Output width of each slice: proj [N]; gate_up [N, N] (gate, up); qkv [N, Nkv, Nkv] (q, k, v)."""
    layer = params["layer"]
    if layer == "qkv":
        return [params["N"], params["Nkv"], params["Nkv"]]
    return [params["N"]] * LAYER_SLICES[layer]


def layer_widths(model: ModelShapes, layer: str) -> dict[str, int] | None:
    """Per-GPU input width H and slice widths of one LoRA-wrapped layer of `model`, or None when the model has no
    such dense layer.  proj: hidden -> hidden (the width the vLLM lora specs use, so the rows line up); qkv: the
    GQA q / kv projection widths per GPU (KV heads replicated below TP, as SGLang shards them); gate_up: the dense
    MLP width per GPU (mlp.intermediate_size, else MoE models' dense or shared-expert MLP)."""
    if not model.has("hidden_size"):
        return None
    h = int(model.get("hidden_size"))
    if layer == "proj":
        return {"H": h, "N": h}
    if layer == "qkv":
        from harness.specs.attention._common import gqa_heads

        heads = gqa_heads(model)
        if heads is None:
            return None
        return {"H": h, "N": heads.q * heads.head_dim, "Nkv": heads.kv * heads.head_dim}
    if layer == "gate_up":
        for key in ("mlp.intermediate_size", "moe.dense_intermediate_size", "moe.shared_intermediate_size"):
            if model.has(key):
                return {"H": h, "N": int(model.get(key)) // model.tp}
        return None
    raise ValueError(f"unknown LoRA layer kind {layer!r}; valid: {', '.join(LAYER_SLICES)}")


def sglang_cases(model: ModelShapes, quick: bool, layers: tuple[str, ...]) -> list[Case]:
    """Every decode and prefill token count x ranks 16 and 64 (quick: 16) x the given layer kinds the model has;
    L = 4 resident adapters."""
    ranks = RANKS[:1] if quick else RANKS
    out = []
    for layer in layers:
        dims = layer_widths(model, layer)
        if dims is None:
            continue
        for regime in ("decode", "prefill"):
            for t in model.tokens(regime, quick=quick):
                for r in ranks:
                    out.append(Case(model.name, regime, {"layer": layer, "T": t, **dims, "r": r, "L": MAX_LORAS}))
    return out


def request_layout(t: int, num_loras: int, regime: str, g: torch.Generator) -> tuple[list[int], list[int]]:
    """(tokens per request, adapter per request in -1..L-1, -1 = base model) for a batch of t tokens.

    decode: t one-token requests; prefill: min(8, t) requests of random lengths; anything else (test shapes): runs
    of 1..8 tokens.  With more than one request, the first uses the base model and the last adapter L-1, so every
    batch mixes base-model and adapter rows; a single request uses adapter 0."""
    cpu = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device)))
    if regime == "decode":
        lens = [1] * t
    elif regime == "prefill":
        b = min(MAX_PREFILL_REQUESTS, t)
        cuts = sorted((torch.randperm(t - 1, generator=cpu)[:b - 1] + 1).tolist()) if b > 1 else []
        lens = [e - s for s, e in zip([0, *cuts], [*cuts, t])]
    else:
        lens = []
        while sum(lens) < t:
            lens.append(min(int(torch.randint(1, 9, (1,), generator=cpu)), t - sum(lens)))
    loras = torch.randint(-1, num_loras, (len(lens),), generator=cpu).tolist()
    if len(lens) > 1:
        loras[0], loras[-1] = -1, num_loras - 1
    else:
        loras[0] = 0
    return lens, loras


def tokens_of(seg_lens: list[int], loras: list[int], device: torch.device) -> torch.Tensor:
    """[T] int32 adapter per token (-1 = base model) from the per-request layout."""
    return torch.repeat_interleave(torch.tensor(loras, dtype=torch.int32),
                                   torch.tensor(seg_lens, dtype=torch.int64)).to(device)


def sglang_shrink_math(x: torch.Tensor, lora_a: torch.Tensor, mapping: torch.Tensor) -> torch.Tensor:
    """out[t] = A[mapping[t]] @ x[t] for all S*r stacked rows at once (0 where mapping[t] == -1, the rows SGLang
    never reads); lora_a [L, S*r, H]; no scaling (SGLang scales in the expand); fp32."""
    out = torch.zeros(x.shape[0], lora_a.shape[1], dtype=torch.float32, device=x.device)
    for lora in torch.unique(mapping).tolist():
        if lora < 0:
            continue
        rows = (mapping == lora).nonzero()[:, 0]
        out[rows] = x[rows].float() @ lora_a[lora].float().t()
    return out


def sglang_expand_math(xa: torch.Tensor, lora_b: torch.Tensor, mapping: torch.Tensor, base: torch.Tensor,
                       widths: list[int], scalings: list[float]) -> torch.Tensor:
    """y[t, slice s] = base[t, slice s] + scalings[l] * xa[t, s*r:(s+1)*r] @ B[l, slice s].T with l = mapping[t]
    (y = base where l == -1); lora_b [L, sum(widths), r]; fp32."""
    r = lora_b.shape[2]
    out = base.float().clone()
    for lora in torch.unique(mapping).tolist():
        if lora < 0:
            continue
        rows = (mapping == lora).nonzero()[:, 0]
        off = 0
        for s, n in enumerate(widths):
            delta = xa[rows, s * r:(s + 1) * r].float() @ lora_b[lora, off:off + n].float().t()
            out[rows, off:off + n] += scalings[lora] * delta
            off += n
    return out
