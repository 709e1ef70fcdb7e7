"""Shared pieces of the `linear` specs: valid-domain input builders, model-shape readers, fp32 references.

Layouts follow fla (`[B, T, H, D]`, varlen packed as B = 1 with `cu_seqlens`), the layout every upstream here
accepts; adapters translate where an upstream differs (vLLM / SGLang keep the recurrent state as `[V, K]`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.shapes import ModelShapes
from harness.spec import Case

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def torch_dtype(dtype: str) -> torch.dtype:
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}") from None


def generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def randn(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=device, dtype=torch.float32)


def l2_normalized(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> torch.Tensor:
    """Unit rows along the last dim, as fla's tests and the GDN layers feed q/k (keeps the delta rule stable)."""
    return F.normalize(randn(shape, g, device), p=2, dim=-1)


def slow_log_decay(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> torch.Tensor:
    """Log-space forget gate in the range a Gated DeltaNet layer produces: logsigmoid(N(0, 1) + 3), typically
    -0.05 (decay ~0.95 per token, -0.3 .. -0.007 at +-2 sigma), like Qwen3-Next's -exp(A_log) softplus(a + dt_bias).
    fla's tests draw logsigmoid(U(0, 1)) (~0.5 per token), under which a chunk's start state has decayed to
    nothing a few tokens in; the slower decay keeps the inter-chunk state and the initial state visible in o."""
    return F.logsigmoid(randn(shape, g, device) + 3.0)


def unit_gate(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> torch.Tensor:
    """A gate in (0, 1): sigmoid of a standard normal (GDN beta)."""
    return torch.sigmoid(randn(shape, g, device))


def cu_seqlens(n: int, t: int, device: torch.device) -> torch.Tensor:
    """Start offsets of n packed sequences of t tokens each, int64 `[n + 1]` (fla's LongTensor contract)."""
    return torch.arange(0, (n + 1) * t, t, dtype=torch.int64, device=device)


def gdn_heads(model: ModelShapes) -> dict[str, int] | None:
    """Per-GPU Gated DeltaNet dims (heads split over TP as vLLM / SGLang shard them), or None when the model has
    no Gated DeltaNet layers (e.g. Kimi Linear's KDA, Mamba-2)."""
    if model.get("linear_attention.kind", None) != "gated_deltanet":
        return None
    tp = model.tp
    h, hv = model.get("linear_attention.num_k_heads"), model.get("linear_attention.num_v_heads")
    if h % tp or hv % tp:
        return None
    return {"H": h // tp, "HV": hv // tp, "K": model.get("linear_attention.head_k_dim"),
            "V": model.get("linear_attention.head_v_dim")}


def token_cases(model: ModelShapes, regime: str, quick: bool, key: str, dims: dict[str, int],
                extra: dict[str, int] | None = None) -> list[Case]:
    """One case per token count of `regime`, the count stored under `key`."""
    return [Case(model=model.name, regime=regime, params={key: t, **(extra or {}), **dims})
            for t in model.tokens(regime, quick=quick)]


def gated_delta_rule_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                               beta: torch.Tensor, h0: torch.Tensor, cu: torch.Tensor, scale: float
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-by-token gated delta rule in fp32, per packed sequence (the recurrence, not the chunked form).

    q, k [1, L, H, K]; v [1, L, HV, V]; g, beta [1, L, HV]; h0 [N, HV, K, V]; cu [N + 1].
    Value head j reads query/key head j // (HV // H) (grouped value attention, as fla indexes it).
    Per token:  S <- exp(g) S;  u = beta (v - S^T k);  S <- S + k u^T;  o = scale * S^T q.
    Returns o [1, L, HV, V] and the final states [N, HV, K, V], both fp32.
    """
    hv = v.shape[2]
    rep = hv // q.shape[2]
    qf = q[0].float().repeat_interleave(rep, dim=1)  # [L, HV, K]
    kf = k[0].float().repeat_interleave(rep, dim=1)
    vf, gf, bf = v[0].float(), g[0].float(), beta[0].float()
    out = torch.empty(vf.shape, dtype=torch.float32, device=v.device)
    finals = torch.empty(h0.shape, dtype=torch.float32, device=v.device)
    bounds = cu.tolist()
    for n in range(len(bounds) - 1):
        s = h0[n].float().clone()  # [HV, K, V]
        for t in range(bounds[n], bounds[n + 1]):
            s = s * torch.exp(gf[t])[:, None, None]
            u = bf[t][:, None] * (vf[t] - torch.einsum("hk,hkv->hv", kf[t], s))
            s = s + kf[t][:, :, None] * u[:, None, :]
            out[t] = scale * torch.einsum("hk,hkv->hv", qf[t], s)
        finals[n] = s
    return out[None], finals


def chunk_local_cumsum(g: torch.Tensor, cu: torch.Tensor, chunk: int) -> torch.Tensor:
    """Cumulative sum of g [1, L, H] restarted at every chunk of every packed sequence (chunks start at the
    sequence start), fp32: the `g` the chunked GDN kernels take after fla's chunk_local_cumsum."""
    out = torch.empty(g.shape, dtype=torch.float32, device=g.device)
    bounds = cu.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        for c in range(s, e, chunk):
            out[:, c:min(c + chunk, e)] = g[:, c:min(c + chunk, e)].float().cumsum(1)
    return out


def chunk_kkt_reference(k: torch.Tensor, beta: torch.Tensor, g_cum: torch.Tensor, cu: torch.Tensor,
                        chunk: int) -> torch.Tensor:
    """A [1, L, HV, chunk] fp32, per chunk of each packed sequence, row i / column j (positions in the chunk):

        A[i, j] = beta_i (k_i . k_j) exp(g_i - g_j)   for j < i,   0 otherwise (and for columns past the chunk end)

    k [1, L, H, K] (value head j reads key head j // (HV / H)); beta, g_cum [1, L, HV]."""
    hv = beta.shape[2]
    kf = k[0].float().repeat_interleave(hv // k.shape[2], dim=1)  # [L, HV, K]
    bf, gf = beta[0].float(), g_cum[0].float()
    out = torch.zeros((k.shape[1], hv, chunk), dtype=torch.float32, device=k.device)
    bounds = cu.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        for c in range(s, e, chunk):
            n = min(c + chunk, e) - c
            kc, gc = kf[c:c + n], gf[c:c + n]  # [n, HV, K], [n, HV]
            dots = torch.einsum("ihk,jhk->hij", kc, kc)
            decay = torch.exp(gc.t()[:, :, None] - gc.t()[:, None, :])
            a = dots * decay * bf[c:c + n].t()[:, :, None]
            a = torch.tril(a, diagonal=-1)  # [HV, n, n]
            out[c:c + n, :, :n] = a.permute(1, 0, 2)
    return out[None]


def chunk_solve_reference(a: torch.Tensor, cu: torch.Tensor, chunk: int) -> torch.Tensor:
    """(I + A)^-1 per chunk block of A [1, L, H, chunk] (strictly lower triangular within each block), fp64
    inverse returned as fp32; columns past a partial chunk's end stay 0."""
    out = torch.zeros(a.shape, dtype=torch.float32, device=a.device)
    bounds = cu.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        for c in range(s, e, chunk):
            n = min(c + chunk, e) - c
            blk = a[0, c:c + n, :, :n].double().permute(1, 0, 2)  # [H, n, n]
            eye = torch.eye(n, dtype=torch.float64, device=a.device)
            inv = torch.linalg.solve_triangular(eye + blk, eye.expand_as(blk), upper=False)
            out[0, c:c + n, :, :n] = inv.permute(1, 0, 2).float()
    return out


def gla_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gk: torch.Tensor, h0: torch.Tensor,
                  cu: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gated linear attention, token by token in fp32, per packed sequence.

    q, k, gk [1, L, H, K]; v [1, L, H, V]; h0 [N, H, K, V].  Per token:
        S <- diag(exp(gk)) S + k v^T;   o = scale * S^T q
    Returns (o [1, L, H, V], final states [N, H, K, V]), fp32."""
    qf, kf, vf, gf = q[0].float(), k[0].float(), v[0].float(), gk[0].float()
    out = torch.empty(vf.shape, dtype=torch.float32, device=v.device)
    finals = torch.empty(h0.shape, dtype=torch.float32, device=v.device)
    bounds = cu.tolist()
    for n in range(len(bounds) - 1):
        s = h0[n].float().clone()  # [H, K, V]
        for t in range(bounds[n], bounds[n + 1]):
            s = s * torch.exp(gf[t])[:, :, None] + kf[t][:, :, None] * vf[t][:, None, :]
            out[t] = scale * torch.einsum("hk,hkv->hv", qf[t], s)
        finals[n] = s
    return out[None], finals


def state_outputs(inputs: dict, dtype: str, state: str = "h0") -> dict[str, torch.Tensor]:
    """{"o": like v in the spec's dtype, "final_state": fp32 like the initial state}: the outputs of the linear
    attention kernels that return their final state."""
    v = inputs["v"]
    return {"o": torch.empty(v.shape, dtype=torch_dtype(dtype), device=v.device),
            "final_state": torch.empty(inputs[state].shape, dtype=torch.float32, device=v.device)}


def gla_inputs(n: int, t: int, h: int, kd: int, vd: int, dtype: str, device: torch.device, seed: int) -> dict:
    """GLA inputs as fla's tests / the GLA layer draw them: q, k, v ~ N(0, 1); gk = logsigmoid(N(0, 1)) / 16
    (gate_logit_normalizer 16 of the GLA layer); h0 ~ N(0, 1) fp32."""
    dt = torch_dtype(dtype)
    gen = generator(device, seed)
    length = n * t
    return {
        "q": randn((1, length, h, kd), gen, device).to(dt),
        "k": randn((1, length, h, kd), gen, device).to(dt),
        "v": randn((1, length, h, vd), gen, device).to(dt),
        "gk": (F.logsigmoid(randn((1, length, h, kd), gen, device)) / 16).to(dt),
        "h0": randn((n, h, kd, vd), gen, device),
        "cu_seqlens": cu_seqlens(n, t, device),
        "scale": kd ** -0.5,
    }
