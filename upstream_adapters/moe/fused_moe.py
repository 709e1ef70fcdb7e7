"""Upstream fused-MoE Triton kernels: vLLM 0.33.0 `fused_moe_kernel` and SGLang 0.5.23 `fused_moe_kernel`.

Each adapter replays its upstream's own production sequence (vLLM `fused_experts_impl`, SGLang
`_fused_moe_kernel_sequence`) with the upstream's functions, on the upstream's tuned config for this GPU:

    [fp8: quantize activations] -> invoke fused_moe_kernel (gate-up) -> SiLU-and-mul
    -> [fp8: quantize activations] -> invoke fused_moe_kernel (down, router weight) -> top-k sum

Where the upstream's production step is a compiled CUDA op that cannot be loaded with a python-only tree
(built against another torch), the adapter runs that upstream's own fallback for the step and says so in the
row's notes: vLLM silu_and_mul -> `SiluAndMul.forward_native`; vLLM per_token_group_fp8_quant -> its Triton
`_per_token_group_quant_fp8` with the launcher's fallback launch parameters; vLLM moe_sum -> torch.sum;
SGLang silu_and_mul -> its Triton `act_and_mul_triton`; SGLang moe_sum_reduce -> its Triton
`moe_sum_reduce_triton`; SGLang's sgl_kernel activation quant -> its Triton `per_token_group_quant_fp8`.
Both adapters also time those substituted steps alone in prepare (`substituted steps alone: <x> us` in the notes),
and the report shows per shape how much of Helion's margin they could explain.
moe_align_block_size runs in prepare (untimed) for every provider: see harness/specs/moe/fused_moe.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.moe.fused_moe import FP8
from harness.specs.moe.routing import align_block_size
from upstream_adapters._base import UpstreamImpl
from upstream_adapters.quantization._common import vllm_group_quant_fp8

VLLM_MOD = "vllm.model_executor.layers.fused_moe.fused_moe"
VLLM_FP8_MOD = "vllm.model_executor.layers.quantization.utils.fp8_utils"
VLLM_ACT_MOD = "vllm.model_executor.layers.activation"
SGL_MOD = "sglang.kernels.ops.moe.fused_moe_triton_kernels"
SGL_CFG_MOD = "sglang.srt.layers.moe.moe_runner.triton_utils.fused_moe_triton_config"
SGL_FP8_MOD = "sglang.kernels.ops.quantization.fp8_kernel"
BLOCK_SHAPE = [128, 128]


class _UpstreamMoE(UpstreamImpl):
    kernel = "fused_moe"
    dtypes = ("bf16", FP8)


class VllmFusedMoE(_UpstreamMoE):
    provider = "vllm"
    package = "vllm"
    modules = (VLLM_MOD, VLLM_FP8_MOD, VLLM_ACT_MOD)

    def _after_import(self, mods: dict[str, Any]) -> None:
        # try_get_optimal_moe_config imports `get_config` (the user override config, None unless a caller set
        # one) from the fused_moe package, whose heavy __init__ the loader bypasses: give the stand-in parent
        # the same answer the real package gives by default.
        pkg = sys.modules[VLLM_MOD.rsplit(".", 1)[0]]
        if not hasattr(pkg, "get_config"):
            pkg.get_config = lambda: None

    def _config(self, fm: Any, w1: torch.Tensor, w2: torch.Tensor, top_k: int, m: int, fp8: bool
                ) -> tuple[dict[str, Any], str]:
        dtype_str = "fp8_w8a8" if fp8 else None
        block = BLOCK_SHAPE if fp8 else None
        e, n = w2.shape[0], w2.shape[2]  # vLLM keys its files on w2's N (per-shard intermediate)
        name = fm.get_config_file_name(e, n, dtype_str, block)
        tuned = fm.get_moe_configs(e, n, dtype_str, block[0] if block else None, block[1] if block else None)
        config = fm.try_get_optimal_moe_config(tuple(w1.shape), tuple(w2.shape), top_k, dtype_str, m,
                                               block_shape=block)
        source = f"vllm tuned: fused_moe/configs/{name}" if tuned else f"vllm default (no tuned file {name})"
        return dict(config), source

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        import triton.language as tl

        mods = self._load()
        fm, fp8u, act = mods[VLLM_MOD], mods[VLLM_FP8_MOD], mods[VLLM_ACT_MOD]
        h, w1, w2 = inputs["hidden_states"], inputs["w1"], inputs["w2"]
        tw, ti = inputs["topk_weights"], inputs["topk_ids"]
        fp8 = dtype == FP8
        m, k = h.shape
        e, n2, _ = w1.shape
        top_k = ti.shape[1]
        config, source = self._config(fm, w1, w2, top_k, m, fp8)
        sorted_ids, expert_ids, ntp = align_block_size(ti, e, config["BLOCK_SIZE_M"])
        cache1 = torch.empty(m, top_k, n2, device=h.device, dtype=h.dtype)
        cache3 = torch.empty(m, top_k, k, device=h.device, dtype=h.dtype)
        silu_mul = act.SiluAndMul.forward_native
        w1s, w2s = inputs.get("w1_scale"), inputs.get("w2_scale")

        def quant(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return vllm_group_quant_fp8(fp8u, x, BLOCK_SHAPE[1])

        def gemm(a, a_scale, b, b_scale, c, mul_routed_weight, kk):
            fm.invoke_fused_moe_triton_kernel(
                a, b, c, a_scale, b_scale, tw, sorted_ids, expert_ids, ntp, mul_routed_weight, kk, config,
                compute_type=tl.bfloat16, use_fp8_w8a8=fp8, use_int8_w8a8=False, use_int8_w8a16=False,
                use_int4_w4a16=False, per_channel_quant=False, block_shape=BLOCK_SHAPE if fp8 else None)

        def fn() -> None:
            a, a_s = quant(h) if fp8 else (h, None)
            gemm(a, a_s, w1, w1s, cache1, False, top_k)
            inter = silu_mul(cache1.view(-1, n2))
            a2, a2_s = quant(inter) if fp8 else (inter, None)
            gemm(a2, a2_s, w2, w2s, cache3, True, 1)
            torch.sum(cache3, dim=1, out=out)

        def substituted() -> None:  # the steps production runs as CUDA ops, alone (same buffers, same sizes)
            if fp8:
                quant(h)
            inter = silu_mul(cache1.view(-1, n2))
            if fp8:
                quant(inter)
            torch.sum(cache3, dim=1, out=out)

        notes = ["silu_and_mul: SiluAndMul.forward_native (CUDA op _C.silu_and_mul not loadable)",
                 "moe_sum: torch.sum (CUDA op _moe_C.moe_sum not loadable)"]
        if fp8:
            notes.append("act quant: Triton _per_token_group_quant_fp8 (CUDA op _C.per_token_group_fp8_quant "
                         "not loadable)")
        notes += substituted_note(substituted, h)
        return Prepared(fn, {"config": config, "config_source": source, "notes": self.notes(*notes)})


def substituted_note(substituted: Any, h: torch.Tensor) -> list[str]:
    """["substituted steps alone: <x> us"]: the steps this row runs in place of production's CUDA ops, timed alone
    with the harness timer in prepare (untimed in the row), so the report can show how much of a margin over this
    upstream they could explain; [] off CUDA."""
    if not h.is_cuda:
        return []
    from harness.timing import time_device

    return [f"substituted steps alone: {time_device([substituted], h.device, target_s=0.05).median_us:.1f} us"]


def _server_defaults_when_unpublished(get_exec: Any) -> Any:
    """SGLang's config lookup reads `get_exec().deterministic.enable_deterministic_inference`, a ServerArgs
    field published by a running server.  Outside a server, answer with the ServerArgs default (False), as a
    default-configured server would; a published context is still used as is."""
    from types import SimpleNamespace

    defaults = SimpleNamespace(deterministic=SimpleNamespace(enable_deterministic_inference=False))

    def get_exec_or_defaults() -> Any:
        try:
            return get_exec()
        except ValueError as e:
            if "not published" not in str(e):
                raise
            return defaults

    get_exec_or_defaults.__wrapped__ = get_exec
    return get_exec_or_defaults


class SglangFusedMoE(_UpstreamMoE):
    provider = "sglang"
    package = "sglang"
    modules = (SGL_MOD, SGL_CFG_MOD, SGL_FP8_MOD)

    def _after_import(self, mods: dict[str, Any]) -> None:
        cfg_mod = mods[SGL_CFG_MOD]
        if not hasattr(cfg_mod.get_exec, "__wrapped__"):
            cfg_mod.get_exec = _server_defaults_when_unpublished(cfg_mod.get_exec)

    def _config(self, cfg_mod: Any, e: int, n: int, k: int, top_k: int, m: int, fp8: bool
                ) -> tuple[dict[str, Any], str]:
        """SGLang's `get_moe_configs` needs its runtime context ("config namespace 'exec' not published"),
        so read the same files it reads, in its order: configs/triton_<own version>/, then newest first."""
        import triton

        dtype_str = "fp8_w8a8" if fp8 else None
        name = cfg_mod.get_config_file_name(e, n, dtype_str, BLOCK_SHAPE if fp8 else None)
        root = Path(cfg_mod.__file__).resolve().parent / "configs"
        mine = "triton_" + triton.__version__.replace(".", "_")
        dirs = [mine] + sorted((d for d in os.listdir(root) if d.startswith("triton_") and d != mine), reverse=True)
        for d in dirs:
            path = root / d / name
            if path.exists():
                table = {int(b): v for b, v in json.loads(path.read_text()).items() if b.isdigit()}
                config = dict(table[min(table, key=lambda b: abs(b - m))])
                source = f"sglang tuned: moe_runner/triton_utils/configs/{d}/{name}"
                if (root / d / name.replace(".json", "_down.json")).exists():
                    source += " (its _down config needs SGLang's TMA down path: not used)"
                return config, source
        config = cfg_mod.get_default_config(m, e, n, k, top_k, dtype_str, False, BLOCK_SHAPE if fp8 else None)
        return dict(config), f"sglang default (no tuned file {name})"

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        import triton.language as tl

        mods = self._load()
        sk, cfg_mod, fp8k = mods[SGL_MOD], mods[SGL_CFG_MOD], mods[SGL_FP8_MOD]
        h, w1, w2 = inputs["hidden_states"], inputs["w1"], inputs["w2"]
        tw, ti = inputs["topk_weights"], inputs["topk_ids"]
        fp8 = dtype == FP8
        m, k = h.shape
        e, n2, _ = w1.shape
        top_k = ti.shape[1]
        config, source = self._config(cfg_mod, e, n2 // 2, k, top_k, m, fp8)  # SGLang keys N = per-shard intermediate
        config.pop("USE_TMA", None)
        sorted_ids, expert_ids, ntp = align_block_size(ti, e, config["BLOCK_SIZE_M"])
        cache1 = torch.empty(m * top_k, n2, device=h.device, dtype=h.dtype)
        cache2 = torch.empty(m * top_k, n2 // 2, device=h.device, dtype=h.dtype)
        cache3 = torch.empty(m, top_k, k, device=h.device, dtype=h.dtype)
        w1s, w2s = inputs.get("w1_scale"), inputs.get("w2_scale")

        def quant(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            if not fp8:
                return x, None
            # on CUDA SGLang binds per_token_group_quant_fp8 to its JIT CUDA op (needs tvm_ffi + nvcc at run
            # time); its Triton launcher is the one it binds everywhere else
            return fp8k._per_token_group_quant_8bit_raw(x, BLOCK_SHAPE[1])

        def gemm(a, a_scale, b, b_scale, c, mul_routed_weight, kk):
            sk.invoke_fused_moe_kernel(
                a, b, None, c, a_scale, b_scale, None, tw, ti, sorted_ids, expert_ids, ntp, mul_routed_weight,
                kk, config, compute_type=tl.bfloat16, use_fp8_w8a8=fp8, use_int8_w8a8=False,
                use_int8_w8a16=False, use_int4_w4a16=False, per_channel_quant=False,
                block_shape=BLOCK_SHAPE if fp8 else None)

        def fn() -> None:
            a, a_s = quant(h)
            gemm(a, a_s, w1, w1s, cache1, False, top_k)
            sk.act_and_mul_triton(cache1, cache2, config, ti, expert_ids, False, "silu")
            a2, a2_s = quant(cache2)
            gemm(a2, a2_s, w2, w2s, cache3, True, 1)
            sk.moe_sum_reduce_triton(cache3, out, 1.0)

        def substituted() -> None:  # the steps production runs as CUDA ops, alone (same buffers, same sizes)
            quant(h)
            sk.act_and_mul_triton(cache1, cache2, config, ti, expert_ids, False, "silu")
            quant(cache2)
            sk.moe_sum_reduce_triton(cache3, out, 1.0)

        notes = ["silu_and_mul: Triton act_and_mul_triton (sgl_kernel CUDA op not loadable)",
                 "runtime context: unpublished; get_exec() answers the ServerArgs defaults",
                 "moe_sum: Triton moe_sum_reduce_triton (sgl_kernel moe_sum_reduce not loadable)"]
        if fp8:
            notes.append("act quant: Triton _per_token_group_quant_8bit_raw (SGLang's JIT CUDA quant not loadable)")
        notes += substituted_note(substituted, h)
        return Prepared(fn, {"config": config, "config_source": source, "notes": self.notes(*notes)})


IMPLS = [VllmFusedMoE(), SglangFusedMoE()]
