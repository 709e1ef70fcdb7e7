"""Upstream EAGLE bookkeeping: vLLM 0.33.0 `_eagle_prepare_next_token_padded` and `_eagle_prepare_inputs_padded`
(v1/spec_decode/utils.py), the warm-up-registered Triton dispatchers, called with the arguments the proposer's
`prepare_next_token_ids_padded` / `prepare_inputs_padded` pass; the two output halves are views of the spec's
buffer (the proposer allocates them per call)."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_SPEC = "vllm.v1.spec_decode.utils"


class VllmEaglePrepareNextToken(UpstreamImpl):
    kernel = "eagle_prepare_next_token"
    provider = "vllm"
    dtypes = ("int32",)
    package = "vllm"
    modules = (VLLM_SPEC,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        import triton

        launcher = self.mod(VLLM_SPEC)._eagle_prepare_next_token_padded
        sampled, discard, backup = (inputs[k] for k in ("sampled_token_ids", "discard_request_mask",
                                                         "backup_next_token_ids"))
        b, s = sampled.shape
        nxt, valid = out[:b], out[b:]
        block = triton.next_power_of_2(s)

        def fn() -> None:
            launcher(sampled, discard, backup, nxt, valid, case.params["V"], s, b, sampled.stride(0),
                     BLOCK_SIZE_TOKENS=block)

        return Prepared(fn, {"config": {"BLOCK_SIZE_TOKENS": block}, "config_source": "caller's choice",
                             "notes": self.notes("_eagle_prepare_next_token_padded dispatcher")})


class VllmEaglePrepareInputsPadded(UpstreamImpl):
    kernel = "eagle_prepare_inputs_padded"
    provider = "vllm"
    dtypes = ("int32",)
    package = "vllm"
    modules = (VLLM_SPEC,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(VLLM_SPEC)._eagle_prepare_inputs_padded
        cu, valid, qsl = inputs["cu_num_draft_tokens"], inputs["valid_count"], inputs["query_start_loc"]
        b = cu.numel()
        index, rejected = out[:b], out[b:]

        def fn() -> None:
            launcher(cu, valid, qsl, index, rejected, b)

        return Prepared(fn, {"config": {}, "config_source": "dispatcher (one program per request)",
                             "notes": self.notes("_eagle_prepare_inputs_padded dispatcher")})


IMPLS = [VllmEaglePrepareNextToken(), VllmEaglePrepareInputsPadded()]
