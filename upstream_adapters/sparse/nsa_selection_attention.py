"""Upstream NSA selected-block attention, forward: three launchers over one contract (spec
harness/specs/sparse/nsa_selection_attention.py: q [B, T, Hq, D], k/v [B, T, Hkv, D], block_indices
[B, T, Hkv, S] int32, valid first in ascending order, -1 padding).

    nsa-triton  XunhaoLai/native-sparse-attention-triton native_sparse_attention/ops/triton/
                topk_sparse_attention.py::topk_sparse_attention (catalog row 31): varlen only (packed [B*T, H, D]
                + cu_seqlens), indices [Hkv, B*T, S] (it counts the valid entries and reads that many from the
                front, hence "valid first").
    fla         fla 0.6.0 fla.ops.nsa.parallel.parallel_nsa (row 33; fla-org/native-sparse-attention moved there):
                batch form [B, T, ...], indices [B, T, Hkv, S] as given, block_counts = S; no gates, no window,
                so it returns the selected branch alone.  Needs Hq / Hkv a power of 2 >= 16.
    nsa-impl    tilde-research/nsa-impl nsa/selection.py::selection_attention (row 34) with variant="one-pass",
                its own _sel_attn_fwd_kernel (the default "two-pass" forwards to fla's ParallelNSAFunction, which
                row 33 already measures); batch form, indices [B, T, Hkv, S].

Untimed prepare: layout translation (flatten to varlen, indices transposed to head-major for nsa-triton), the
cu_seqlens tensor.  Each launcher allocates its output; the copy into the harness buffer is timed.
"""

from __future__ import annotations

from typing import Any

import torch
import triton

from harness.spec import Case, Inputs, Prepared
from upstream_adapters._base import UpstreamImpl

KERNEL = "nsa_selection_attention"
NSA_TRITON_MOD = "native_sparse_attention.ops.triton.topk_sparse_attention"
FLA_MOD = "fla.ops.nsa.parallel"
NSA_IMPL_MOD = "nsa.selection"


class NsaTritonSelection(UpstreamImpl):
    kernel = KERNEL
    provider = "nsa-triton"
    package = "nsa-triton"
    dtypes = ("bf16",)
    modules = (NSA_TRITON_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        mod = self.load_modules()[NSA_TRITON_MOD]
        launch = mod.topk_sparse_attention
        q, k, v, idx = inputs["q"], inputs["k"], inputs["v"], inputs["block_indices"]
        b, t, hq, d = q.shape
        hkv, s, bs = k.shape[2], idx.shape[-1], inputs["block_size"]
        args: dict[str, Any] = dict(
            q=q.reshape(b * t, hq, d), k=k.reshape(b * t, hkv, d), v=v.reshape(b * t, hkv, d),
            topk_idx=idx.permute(2, 0, 1, 3).reshape(hkv, b * t, s).contiguous(),  # [Hkv, B*T, S]
            block_size=bs, cu_seqlens=torch.arange(b + 1, dtype=torch.int32, device=q.device) * t,
            softmax_scale=inputs["scale"],
        )
        out_flat = out.view(b * t, hq, d)

        def fn() -> None:
            out_flat.copy_(launch(**args))

        warps, stages = mod.get_num_warps_stages(d, triton.next_power_of_2(bs), mod.IS_HOPPER_GPU)
        config = {"BLOCK_SIZE_K": triton.next_power_of_2(bs), "BLOCK_SIZE_D": triton.next_power_of_2(d),
                  "BLOCK_SIZE_H": max(16, triton.next_power_of_2(hq // hkv)),
                  "BLOCK_SIZE_T": triton.next_power_of_2(s), "num_warps": warps, "num_stages": stages}
        return Prepared(fn, {"config": config, "config_source": "launcher heuristic (utils.get_num_warps_stages, "
                                                                "Hopper table when IS_HOPPER_GPU)",
                             "notes": self.notes("packed to varlen [B*T, H, D] + cu_seqlens and indices to "
                                                 "[Hkv, B*T, S] in prepare", "the launcher reads max_seqlen with "
                                                 ".item() (host sync; no CUDA graph capture)",
                                                 "o copied into the harness buffer (no out= argument)")})


class FlaParallelNsa(UpstreamImpl):
    kernel = KERNEL
    provider = "fla"
    package = "fla"
    dtypes = ("bf16",)
    modules = (FLA_MOD,)

    def case_reason(self, case: Case, dtype: str) -> str | None:
        grp = case.params["Hq"] // case.params["Hkv"]
        if grp < 16 or grp & (grp - 1):
            return f"fla parallel_nsa needs a GQA group Hq/Hkv that is a power of 2 >= 16 (this case: {grp})"
        return None

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[FLA_MOD].parallel_nsa
        q, k, idx = inputs["q"], inputs["k"], inputs["block_indices"]
        grp = q.shape[2] // k.shape[2]
        if grp < 16 or grp & (grp - 1):
            # parallel_nsa asserts this (its group is a tl.arange/tl.dot tile dim); say so before it does
            raise ValueError(f"fla parallel_nsa needs a GQA group Hq/Hkv that is a power of 2 >= 16; this case has "
                             f"{q.shape[2]}/{k.shape[2]} = {grp}")
        args: dict[str, Any] = dict(q=q, k=k, v=inputs["v"], block_indices=idx, block_counts=idx.shape[-1],
                                    block_size=inputs["block_size"], scale=inputs["scale"])

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {}, "config_source": "fla autotune (parallel_nsa_fwd_kernel num_warps x "
                                                            "num_stages; BK/BV by check_shared_mem)",
                             "notes": self.notes("block_counts=S (int)", "parallel_nsa also mean-pools k and v "
                                                 "for its compressed branch even without g_cmp (timed, unused)",
                                                 "o copied into the harness buffer (no out= argument)")})


class NsaImplSelection(UpstreamImpl):
    kernel = KERNEL
    provider = "nsa-impl"
    package = "nsa-impl"
    dtypes = ("bf16",)
    modules = (NSA_IMPL_MOD,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launch = self.load_modules()[NSA_IMPL_MOD].selection_attention
        idx = inputs["block_indices"]
        args: dict[str, Any] = dict(q=inputs["q"], k=inputs["k"], v=inputs["v"], block_indices=idx,
                                    block_count=idx.shape[-1], block_size=inputs["block_size"],
                                    scale=inputs["scale"], variant="one-pass", causal=True)

        def fn() -> None:
            out.copy_(launch(**args))

        return Prepared(fn, {"config": {}, "config_source": "nsa-impl autotune (_sel_attn_fwd_kernel num_warps)",
                             "notes": self.notes("variant='one-pass' (its own kernel; 'two-pass' is fla's "
                                                 "ParallelNSAFunction)", "o copied into the harness buffer (no "
                                                 "out= argument)")})


IMPLS = [NsaTritonSelection(), FlaParallelNsa(), NsaImplSelection()]
