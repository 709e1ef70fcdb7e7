"""Upstream EAGLE input rotation: SGLang 0.5.23 `rotate_input_ids` (kernels/ops/speculative/multi_layer_eagle), the
public launcher on its default path (select_index None, BLOCK_SIZE 8).  The kernel rotates in place, so each
call copies input_ids into the spec's buffer first."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl

SGL_EAGLE = "sglang.kernels.ops.speculative.multi_layer_eagle"


class SglangRotateInputIds(UpstreamImpl):
    kernel = "rotate_input_ids"
    provider = "sglang"
    dtypes = ("int64",)
    package = "sglang"
    modules = (SGL_EAGLE,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(SGL_EAGLE).rotate_input_ids
        ids, starts, lens, new = (inputs[k] for k in ("input_ids", "extend_start_loc", "extend_seq_lens",
                                                      "topk_index"))

        def fn() -> None:
            out.copy_(ids)
            launcher(out, starts, lens, new)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 8}, "config_source": "launcher constant",
                             "notes": self.notes("rotate_input_ids on a copy of input_ids (in-place kernel)")})


IMPLS = [SglangRotateInputIds()]
