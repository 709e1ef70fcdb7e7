"""Helion port of selected-token log-probabilities (catalog row 49; vLLM v1 GPU worker `_topk_log_softmax_kernel`
via `compute_token_logprobs`, sample/logprob.py).

    lse[b] = logsumexp_v logits[b, v];   out[b, j] = logits[b, ids[b, j]] - lse[b]     [B, V] fp32, [B, K] -> [B, K]

One read of the logits (the upstream reads each row twice: max pass, then sum-exp pass): launch 1 streams each
(row, chunk) once with an online max / rescaled sum of exps and writes the chunk's (max, sum) to [B, chunks]
scratch; launch 2 (one program per row) merges the row's partials into the log-sum-exp and gathers the K
requested logits.  Rows are split into chunks so that B * chunks fills the GPU at small B (the chunk is a host
value baked into the kernel, so tuning can only change the inner streaming block).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import helion
import helion.language as hl
import torch

from harness.spec import Case, Inputs, Outputs
from ports._port import Configs, HelionPort, Launch, check_main, row_chunk, row_chunk_config, row_partials


@helion.kernel(static_shapes=False)
def logprobs_partial_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    part_max: torch.Tensor,  # [B, C] fp32, written: max of each chunk
    part_sum: torch.Tensor,  # [B, C] fp32, written: sum of exp(x - chunk max)
    chunk: int,
) -> None:
    B, V = logits.size(0), logits.size(1)
    for tile_b, tile_c in hl.tile([B, V], block_size=[1, hl.specialize(chunk)]):
        m = hl.full([tile_b], float("-inf"), dtype=torch.float32)
        s = hl.zeros([tile_b], dtype=torch.float32)
        for tile_v in hl.tile(tile_c.begin, tile_c.end):
            x = logits[tile_b, tile_v]
            m_new = torch.maximum(m, torch.amax(x, dim=1))
            s = s * torch.exp(m - m_new) + torch.sum(torch.exp(x - m_new[:, None]), dim=1)
            m = m_new
        part_max[tile_b, tile_c.id] = m
        part_sum[tile_b, tile_c.id] = s


@helion.kernel(static_shapes=False)
def logprobs_gather_kernel(
    logits: torch.Tensor,  # [B, V] fp32
    part_max: torch.Tensor,  # [B, C] fp32
    part_sum: torch.Tensor,  # [B, C] fp32
    token_ids: torch.Tensor,  # [B, K] int64
    out: torch.Tensor,  # [B, K] fp32, written
) -> None:
    B, V = logits.size(0), logits.size(1)
    logits_flat = logits.view(-1)
    for tile_b in hl.tile(B, block_size=1):
        pm = part_max[tile_b, :]
        m = torch.amax(pm, dim=1)
        s = torch.sum(part_sum[tile_b, :] * torch.exp(pm - m[:, None]), dim=1)
        lse = m + torch.log(s)
        flat = tile_b.index[:, None].to(torch.int64) * V + token_ids[tile_b, :]  # [tile_b, K]
        picked = hl.load(logits_flat, [flat])
        out[tile_b, :] = picked - lse[:, None]


class HelionTokenLogprobs(HelionPort):
    kernel: ClassVar[str] = "token_logprobs"
    dtypes: ClassVar[tuple[str, ...] | None] = ("fp32",)
    notes: ClassVar[tuple[str, ...]] = ("one read of the logits: split-row online logsumexp partials, then a per-row "
                                        "merge + gather of the K requested logits",)

    def default_configs(self, dims: Mapping[str, Any], dtype: str) -> Configs:
        return {"logprobs_partial_kernel": row_chunk_config(int(dims["B"]), int(dims["V"]), 4096),
                "logprobs_gather_kernel": {"block_sizes": [], "num_warps": 1}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, torch.Tensor)
        logits = inputs["logits"]
        b, v = logits.shape
        chunk = row_chunk(b, v)
        pmax, psum = row_partials(logits, chunk, torch.float32, torch.float32)
        return [Launch(logprobs_partial_kernel, (logits, pmax, psum, chunk)),
                Launch(logprobs_gather_kernel, (logits, pmax, psum, inputs["token_ids"], out))]


IMPL = HelionTokenLogprobs()

if __name__ == "__main__":
    check_main(IMPL)
