"""Shared plumbing of the SGLang 0.5.23 LoRA adapters: the import set-up, the adapter weight pool and the
LoRABatchInfo each SGLang LoRA backend builds per forward step, built in prepare (untimed).

Pool: SGLang's LoRA memory pool has max_loras_per_batch slots, the base model (uid None) taking one with rank 0
and scaling 0 (LoRAManager.prepare_lora_batch; None sorts first, so it gets slot 0 of an empty pool).  Here the
pool has L + 1 slots: slot 0 the base model (zero weights, never read: the kernels return early at rank 0), slot
l + 1 the spec's adapter l.

Batch metadata, as the backends build it for an eager (non-CUDA-graph) step:
    csgmv  (ChunkedSgmvLoRABackend.prepare_lora_batch with _get_permutation / _get_segments_info): tokens sorted
           by slot (stable), cut into segments of one slot and at most chunk_size tokens; chunk_size 16 (the
           --max-lora-chunk-size default 16 makes _determine_chunk_size return MIN_CHUNK_SIZE for every batch).
    triton (TritonLoRABackend.prepare_lora_batch): one segment per request; in decode the kernels get
           _build_sgemm_routing's view instead (tokens sorted by slot, one segment per slot, permutation set).
The segment logic is re-stated here (a dozen lines each, cited above) rather than called: the backends need a
ForwardBatch and pinned host memory, and importing them pulls ~140 more SGLang modules onto the device.

Import set-up: sglang.srt.lora.utils (LoRABatchInfo, imported by every launcher module) imports ForwardBatch and
AutoConfig for annotations only; their modules import transformers, which the device image does not have.  When
transformers is missing, those two modules are registered as loader stand-ins before the import, so the real
LoRABatchInfo dataclass loads.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, ClassVar

import torch

from harness.spec import Case, Inputs
from upstream_adapters._loader import StandInModule, is_stand_in
from upstream_adapters.quantization._common import UpstreamImpl

SGL_UTILS = "sglang.srt.lora.utils"
SGL_TUNING = "sglang.kernels.ops.lora.dense.lora_tuning_config"
_ANNOTATION_ONLY = ("sglang.srt.model_executor.forward_batch_info", "sglang.srt.utils.hf_transformers_utils")

CSGMV_CHUNK = 16  # ChunkedSgmvLoRABackend.MIN_CHUNK_SIZE, what --max-lora-chunk-size 16 (default) gives


class SglangLoraImpl(UpstreamImpl):
    provider = "sglang"
    dtypes = ("bf16",)
    package = "sglang"
    backend: ClassVar[str] = ""  # "csgmv" | "triton": which LoRA backend calls this kernel

    def _before_import(self) -> None:
        super()._before_import()
        if importlib.util.find_spec("transformers") is None:
            for name in _ANNOTATION_ONLY:
                if name not in sys.modules:
                    sys.modules[name] = StandInModule(name, f"is a stand-in for {name} (imports transformers; "
                                                            "sglang.srt.lora.utils uses it for annotations only)")

    def base_notes(self) -> list[str]:
        out = super().base_notes()
        stand_ins = [n for n in _ANNOTATION_ONLY if is_stand_in(sys.modules.get(n))]
        if stand_ins:
            out.append("annotation-only stand-ins: " + ", ".join(stand_ins))
        return out

    def batch_info(self, inputs: Inputs, case: Case) -> tuple[Any, dict[str, Any]]:
        """LoRABatchInfo for this backend and regime, and the facts for the row's notes."""
        utils = self.mod(SGL_UTILS)
        device = inputs["mapping"].device
        p = case.params
        slots = [lo + 1 for lo in inputs["req_loras"]]  # base model (-1) -> slot 0
        ranks = [0] + [p["r"]] * p["L"]
        scalings = [0.0] + [float(s) for s in inputs["scalings"]]
        if self.backend == "csgmv":
            return csgmv_batch_info(utils, inputs["seg_lens"], slots, ranks, scalings, CSGMV_CHUNK, device), \
                {"chunk_size": CSGMV_CHUNK}
        info = triton_batch_info(utils, inputs["seg_lens"], slots, ranks, scalings, device)
        if case.regime == "decode":
            return sgemm_routing(utils, info, len(ranks)), {"routing": "decode: sorted by adapter"}
        return info, {"routing": "per-request segments"}


def pool(weights: torch.Tensor) -> torch.Tensor:
    """[L, ...] adapter weights -> the [L + 1, ...] pool with the base model's (never read) slot 0 zeroed."""
    out = torch.zeros((weights.shape[0] + 1, *weights.shape[1:]), dtype=weights.dtype, device=weights.device)
    out[1:] = weights
    return out.contiguous()


def csgmv_batch_info(utils: Any, seg_lens: list[int], slots: list[int], ranks: list[int], scalings: list[float],
                     chunk_size: int, device: torch.device) -> Any:
    """ChunkedSgmvLoRABackend.prepare_lora_batch (eager): permutation sorting tokens by slot, segments of one slot
    and at most chunk_size tokens."""
    row_slots = torch.repeat_interleave(torch.tensor(slots, dtype=torch.int32), torch.tensor(seg_lens))
    permutation = torch.argsort(row_slots, stable=True)
    unique, counts = torch.unique_consecutive(row_slots[permutation], return_counts=True)
    seg_slots: list[int] = []
    lens: list[int] = []
    for slot, n in zip(unique.tolist(), counts.tolist()):
        k = (n + chunk_size - 1) // chunk_size
        seg_slots += [slot] * k
        lens += [chunk_size] * (k - 1) + [n - (k - 1) * chunk_size]
    seg_indptr = torch.zeros(len(lens) + 1, dtype=torch.int32)
    seg_indptr[1:] = torch.cumsum(torch.tensor(lens, dtype=torch.int32), dim=0)
    req_indptr = torch.zeros(len(seg_lens) + 1, dtype=torch.int32)
    req_indptr[1:] = torch.cumsum(torch.tensor(seg_lens, dtype=torch.int32), dim=0)
    return utils.LoRABatchInfo(
        bs=len(seg_lens), num_segments=len(seg_slots), max_len=chunk_size, use_cuda_graph=False,
        seg_indptr=seg_indptr.to(device), weight_indices=torch.tensor(seg_slots, dtype=torch.int32, device=device),
        lora_ranks=torch.tensor(ranks, dtype=torch.int32, device=device),
        scalings=torch.tensor(scalings, dtype=torch.float, device=device),
        permutation=permutation.to(torch.int32).to(device), seg_lens=None,
        req_seg_indptr=req_indptr.to(device), req_weight_indices=torch.tensor(slots, dtype=torch.int32, device=device),
        expected_tokens=sum(seg_lens), has_active_lora=any(ranks[s] > 0 for s in slots))


def triton_batch_info(utils: Any, seg_lens: list[int], slots: list[int], ranks: list[int], scalings: list[float],
                      device: torch.device) -> Any:
    """TritonLoRABackend.prepare_lora_batch (eager): one segment per request, no permutation; lora_ranks int64
    as that backend allocates them."""
    lens = torch.tensor(seg_lens, dtype=torch.int32, device=device)
    seg_indptr = torch.zeros(len(seg_lens) + 1, dtype=torch.int32, device=device)
    seg_indptr[1:] = torch.cumsum(lens, dim=0)
    return utils.LoRABatchInfo(
        bs=len(seg_lens), num_segments=len(seg_lens), max_len=max(seg_lens), use_cuda_graph=False, seg_lens=lens,
        seg_indptr=seg_indptr, weight_indices=torch.tensor(slots, dtype=torch.int32, device=device),
        lora_ranks=torch.tensor(ranks, dtype=torch.int64, device=device),
        scalings=torch.tensor(scalings, dtype=torch.float, device=device), permutation=None,
        expected_tokens=sum(seg_lens), has_active_lora=any(ranks[s] > 0 for s in slots))


def sgemm_routing(utils: Any, info: Any, num_slots: int) -> Any:
    """TritonLoRABackend._build_sgemm_routing (decode): tokens sorted by slot, one segment per pool slot."""
    bs = info.bs
    wi = info.weight_indices[:bs]
    perm = torch.argsort(wi, stable=True).to(torch.int32)
    sorted_wi = wi[perm]
    adapter_ids = torch.arange(num_slots, device=wi.device, dtype=torch.int32)
    seg_lens = torch.searchsorted(sorted_wi, adapter_ids, right=True) - torch.searchsorted(sorted_wi, adapter_ids)
    seg_indptr = torch.zeros(num_slots + 1, dtype=torch.int32, device=wi.device)
    seg_indptr[1:] = torch.cumsum(seg_lens, dim=0)
    return utils.LoRABatchInfo(
        bs=num_slots, use_cuda_graph=False, num_segments=num_slots, seg_lens=seg_lens, seg_indptr=seg_indptr,
        max_len=bs, weight_indices=adapter_ids, lora_ranks=info.lora_ranks[:num_slots].clone(),
        scalings=info.scalings[:num_slots].clone(), permutation=perm)


def clear_cached_kernel(kernel: Any) -> bool:
    """Empty a CachedKernel's cache (sglang.srt.utils.cached_triton_kernel, used on CUDA).  Its key omits some
    constexprs (the chunked shrink keys on K, NUM_SLICES, BLOCK_M only, not on N = S*r or the tile), which is
    safe inside one server (fixed ranks per layer) but not across the sweep's ranks; a fresh key per row makes
    the first call compile through Triton's own cache.  Untimed (prepare)."""
    clear = getattr(kernel, "_clear_cache", None)
    if clear is None:
        return False
    clear()
    return True
