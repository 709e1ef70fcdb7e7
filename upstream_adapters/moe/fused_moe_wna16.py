"""Upstream int4-weight fused-MoE GEMM: vLLM 0.33.0 `invoke_fused_moe_wna16_triton_kernel` (fused_moe/fused_moe.py),
the launcher of `fused_moe_kernel_gptq_awq`, called as `fused_experts_impl` -> `dispatch_fused_moe_kernel` calls it
for `use_int4_w4a16=True, block_shape=[0, group]` (vLLM's make_wna16_moe_quant_config):

    gate_up: A = hidden_states [M, K],        C = intermediate_cache1 [M, top_k, N], top_k,  no router weight
    down:    A = activated cache [M*top_k, K], C = intermediate_cache3 [M, top_k, N], top_k 1, router weight

Config: vLLM's own lookup, `try_get_optimal_moe_config(w1.shape, w2.shape, top_k, "int4_w4a16", M,
block_shape=[0, group])` with the layer's full w1 / w2 shapes (one config for both GEMMs, as fused_experts_impl
does), then the launcher's `get_moe_wna16_block_config` fills BLOCK_SIZE_N / BLOCK_SIZE_K.  vLLM 0.33.0 ships no
int4_w4a16 tuned file, so it is `get_default_config`.  One deviation, stated in the notes: on CUDA vLLM sends
launches with num_valid_tokens / E <= 6 (group 32/64/128) to the compiled `ops.moe_wna16_gemm` (not Triton, not
loadable here), and get_default_config then answers that kernel's config (BLOCK_SIZE_M down to 1, which the
Triton kernel's tl.dot cannot take).  For those cases the adapter asks get_default_config with
`should_moe_wna16_use_cuda` answering False: the config vLLM gives the Triton kernel on a platform without the
CUDA op.  moe_align_block_size runs in prepare (untimed) with the config's BLOCK_SIZE_M (harness routing helper).
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from harness.spec import Case, Inputs, Prepared
from harness.specs.moe.fused_moe_wna16 import SYM, ZP, layer_dims
from harness.specs.moe.routing import align_block_size
from upstream_adapters._base import UpstreamImpl

VLLM_MOD = "vllm.model_executor.layers.fused_moe.fused_moe"
CONFIG_DTYPE = "int4_w4a16"


class VllmFusedMoEWNA16(UpstreamImpl):
    kernel = "fused_moe_wna16"
    provider = "vllm"
    dtypes = (SYM, ZP)
    package = "vllm"
    modules = (VLLM_MOD,)

    def _after_import(self, mods: dict[str, Any]) -> None:
        # try_get_optimal_moe_config imports `get_config` (the user override, None unless a caller set one) from
        # the fused_moe package, whose heavy __init__ the loader bypasses: answer as the real package does.
        pkg = sys.modules[VLLM_MOD.rsplit(".", 1)[0]]
        if not hasattr(pkg, "get_config"):
            pkg.get_config = lambda: None

    def _config(self, fm: Any, p: dict) -> tuple[dict[str, Any], str, str]:
        e, h, inter, top_k, m, group = p["E"], p["H"], p["I"], p["top_k"], p["M"], p["G"]
        w1_shape, w2_shape = (e, 2 * inter, h // 2), (e, h, inter // 2)  # MoeWNA16 qweight shapes (uint8)
        block = [0, group]
        cuda_op = fm.should_moe_wna16_use_cuda(num_valid_tokens=m * top_k, group_size=group, num_experts=e, bit=4)
        name = fm.get_config_file_name(e, 2 * (inter // 2), CONFIG_DTYPE, block)
        tuned = fm.get_moe_configs(e, 2 * (inter // 2), CONFIG_DTYPE, 0, group)
        note = ""
        if cuda_op and not tuned:
            original = fm.should_moe_wna16_use_cuda
            fm.should_moe_wna16_use_cuda = lambda *a, **k: False
            try:
                config = fm.try_get_optimal_moe_config(w1_shape, w2_shape, top_k, CONFIG_DTYPE, m, block_shape=block)
            finally:
                fm.should_moe_wna16_use_cuda = original
            note = ("vLLM on CUDA runs this token count (M*top_k/E <= 6) on the compiled ops.moe_wna16_gemm, not "
                    "Triton; config = get_default_config's Triton-path branch (should_moe_wna16_use_cuda -> False)")
        else:
            config = fm.try_get_optimal_moe_config(w1_shape, w2_shape, top_k, CONFIG_DTYPE, m, block_shape=block)
        source = f"vllm tuned: fused_moe/configs/{name}" if tuned else f"vllm default (no tuned file {name})"
        return dict(config), source, note

    def prepare(self, inputs: Inputs, out: torch.Tensor, case: Case, dtype: str) -> Prepared:
        import triton.language as tl

        fm = self.mod(VLLM_MOD)
        p = dict(case.params)
        down = p["layer"] == "down"
        a, qw, sc, zp = inputs["a"], inputs["qweight"], inputs["scales"], inputs.get("qzeros")
        tw, ti = inputs["topk_weights"], inputs["topk_ids"]
        config, source, note = self._config(fm, p)
        e = qw.shape[0]
        sorted_ids, expert_ids, ntp = align_block_size(ti, e, config["BLOCK_SIZE_M"])
        kernel_top_k = 1 if down else p["top_k"]
        launcher = fm.invoke_fused_moe_wna16_triton_kernel
        block = [0, p["G"]]
        k, n, _ = layer_dims(p)
        assert a.shape[1] == k and qw.shape[1] == n and out.shape[2] == n, "layout mismatch with the spec"

        def fn() -> None:
            launcher(a, qw, out, sc, zp, tw, sorted_ids, expert_ids, ntp, down, kernel_top_k, config,
                     compute_type=tl.bfloat16, use_int8_w8a16=False, use_int4_w4a16=True, block_shape=block)

        # the block config the launcher adds (it copies `config` and calls get_moe_wna16_block_config itself)
        full = dict(config)
        full.update(fm.get_moe_wna16_block_config(
            config=config, use_moe_wna16_cuda=False, num_valid_tokens=a.shape[0] * kernel_top_k, size_k=k,
            size_n=n, num_experts=n, group_size=p["G"], real_top_k=kernel_top_k,
            block_size_m=config["BLOCK_SIZE_M"]))
        notes = [f"{p['layer']} GEMM as fused_experts_impl launches it (top_k={kernel_top_k}, "
                 f"mul_routed_weight={down})", note,
                 "has_zp (AWQ-style packed qzeros)" if zp is not None else "symmetric (GPTQ sym: nibble - 8)"]
        return Prepared(fn, {"config": full, "config_source": source + " + get_moe_wna16_block_config",
                             "notes": self.notes(*notes)})


IMPLS = [VllmFusedMoEWNA16()]
