"""Upstream sampling kernels of vLLM 0.33.0, the public Triton launchers, called as the v1 GPU worker's sampler
calls them: `apply_temperature` and `gumbel_sample` (v1/worker/gpu/sample/gumbel.py), `apply_min_p` (min_p.py),
`apply_penalties` (penalties.py), `compute_token_logprobs` (logprob.py) and `apply_top_k_top_p_triton`
(v1/sample/ops/topk_topp_triton.py).  Temperature, min-p, penalties and top-k/top-p work in place, so each call
first copies the logits into the spec's buffer (min-p then clamps -inf to the contract's FILTERED value; top-k/
top-p is given FILTERED as its mask value); compute_token_logprobs and gumbel_sample allocate their results, so
their calls end with a copy into the spec's buffer."""

from __future__ import annotations

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.sampling.min_p import FILTERED
from upstream_adapters.quantization._common import UpstreamImpl

GUMBEL = "vllm.v1.worker.gpu.sample.gumbel"
MIN_P = "vllm.v1.worker.gpu.sample.min_p"
LOGPROB = "vllm.v1.worker.gpu.sample.logprob"
PENALTIES = "vllm.v1.worker.gpu.sample.penalties"
TOPK_TOPP = "vllm.v1.sample.ops.topk_topp_triton"


class VllmTemperature(UpstreamImpl):
    kernel = "temperature"
    provider = "vllm"
    dtypes = ("fp32",)
    package = "vllm"
    modules = (GUMBEL,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(GUMBEL).apply_temperature
        logits, mapping, temp = inputs["logits"], inputs["mapping"], inputs["temperature"]

        def fn() -> None:
            out.copy_(logits)
            launcher(out, mapping, temp)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 8192}, "config_source": "launcher constant",
                             "notes": self.notes("apply_temperature on a copy of the logits (in-place kernel)")})


class VllmMinP(UpstreamImpl):
    kernel = "min_p"
    provider = "vllm"
    dtypes = ("fp32",)
    package = "vllm"
    modules = (MIN_P,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(MIN_P).apply_min_p
        logits, mapping, min_p = inputs["logits"], inputs["mapping"], inputs["min_p"]

        def fn() -> None:
            out.copy_(logits)
            launcher(out, mapping, min_p)
            out.clamp_(min=FILTERED)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 1024}, "config_source": "launcher constant",
                             "notes": self.notes("apply_min_p on a copy of the logits, then -inf clamped to "
                                                 f"{FILTERED:g} (contract)")})


class VllmTokenLogprobs(UpstreamImpl):
    kernel = "token_logprobs"
    provider = "vllm"
    dtypes = ("fp32",)
    package = "vllm"
    modules = (LOGPROB,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(LOGPROB).compute_token_logprobs
        logits, ids = inputs["logits"], inputs["token_ids"]

        def fn() -> None:
            out.copy_(launcher(logits, ids))

        return Prepared(fn, {"config": {"BLOCK_SIZE": 1024}, "config_source": "launcher constant",
                             "notes": self.notes("compute_token_logprobs; result copied into the spec's buffer; "
                                                 "grid (B,): one program a row reads the vocabulary twice in "
                                                 "serial 1024-wide steps (max, then sum of exp), so at small B "
                                                 "most SMs idle")})


class VllmGumbelSample(UpstreamImpl):
    kernel = "gumbel_sample"
    provider = "vllm"
    dtypes = ("fp32",)
    package = "vllm"
    modules = (GUMBEL,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(GUMBEL).gumbel_sample
        logits, mapping, temp, seeds, pos = (inputs[k] for k in ("logits", "mapping", "temperature", "seeds",
                                                                  "pos"))

        def fn() -> None:
            out.copy_(launcher(logits, mapping, temp, seeds, pos, apply_temperature=True, is_drafting=False))

        return Prepared(fn, {"config": {"BLOCK_SIZE": 1024, "use_fp64": False}, "config_source": "launcher constant",
                             "notes": self.notes("gumbel_sample (apply_temperature=True, not drafting, fp32 noise); "
                                                 "ids copied into the spec's buffer")})


class VllmPenalties(UpstreamImpl):
    kernel = "penalties"
    provider = "vllm"
    dtypes = ("fp32",)
    package = "vllm"
    modules = (PENALTIES,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(PENALTIES).apply_penalties
        names = ("mapping", "token_ids", "local_pos", "repetition_penalty", "frequency_penalty", "presence_penalty",
                 "prompt_bin_mask", "output_bin_counts")
        args = tuple(inputs[k] for k in names)
        logits = inputs["logits"]

        def fn() -> None:
            out.copy_(logits)
            launcher(out, *args)

        return Prepared(fn, {"config": {"BLOCK_SIZE": 8192}, "config_source": "launcher constant",
                             "notes": self.notes("apply_penalties on a copy of the logits (in-place kernel), "
                                                 "expanded_local_pos = 0 (no speculative positions)")})


class VllmTopKTopP(UpstreamImpl):
    kernel = "top_k_top_p"
    provider = "vllm"
    dtypes = ("fp32",)
    package = "vllm"
    modules = (TOPK_TOPP,)

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        launcher = self.mod(TOPK_TOPP).apply_top_k_top_p_triton
        logits, k, p = inputs["logits"], inputs["k"], inputs["p"]

        def fn() -> None:
            out.copy_(logits)
            res = launcher(out, k, p, mask_value=FILTERED)
            if res.data_ptr() != out.data_ptr():  # the launcher may return a new tensor for odd layouts
                out.copy_(res)

        return Prepared(fn, {"config": "launcher (monolithic kernel + split top-p pipeline for small batches)",
                             "config_source": "launcher heuristic",
                             "notes": self.notes(f"apply_top_k_top_p_triton on a copy of the logits, mask_value="
                                                 f"{FILTERED:g}, has_topp_only_rows=True; the top-p pivot "
                                                 f"bisection stops after 18 steps and keeps the midpoint (Qrita "
                                                 f"search cap), so tail tokens whose probability lies within "
                                                 f"that last interval can flip")})


IMPLS = [VllmTemperature(), VllmMinP(), VllmTokenLogprobs(), VllmGumbelSample(), VllmPenalties(), VllmTopKTopP()]
