"""Upstream MoE alignment: SGLang 0.5.23 `moe_align_block_size_triton` (sglang/test/kernels/moe_align.py), the
public four-stage Triton launcher, writing into views of the spec's buffer.  SGLang's serving path uses its
sgl_kernel CUDA op; this Triton version is what its tests compare that op against.  The timed call fills the
pad values first (sorted_ids = M * top_k, expert_ids = -1), then runs the launcher (which allocates its two
small count buffers per call, as upstream)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.moe.moe_align_block_size import split_output
from upstream_adapters.quantization._common import UpstreamImpl

SGL_ALIGN = "sglang.test.kernels.moe_align"


class SglangMoeAlignBlockSize(UpstreamImpl):
    kernel = "moe_align_block_size"
    provider = "sglang"
    dtypes = ("int32",)
    package = "sglang"
    modules = (SGL_ALIGN,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_ALIGN).moe_align_block_size_triton
        p = case.params
        ids = inputs["topk_ids"]
        sorted_ids, expert_ids, ntp = split_output(out, p["M"], p["top_k"], p["E"], p["B"])
        numel = ids.numel()

        def fn() -> None:
            sorted_ids.fill_(numel)
            expert_ids.fill_(-1)
            launcher(ids, p["E"], p["B"], sorted_ids, expert_ids, ntp)

        return Prepared(fn, {"config": {"block_size": p["B"]}, "config_source": "case (block size)",
                             "notes": self.notes("sglang.test.kernels.moe_align Triton launcher; pad fills in "
                                                 "the timed call")})


IMPLS = [SglangMoeAlignBlockSize()]
