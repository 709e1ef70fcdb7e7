"""Upstream fused SiLU-and-mul + fp8 group quant: vLLM 0.33.0 `_silu_mul_per_token_group_quant_fp8_colmajor`
(quantization/utils/fp8_utils), launched as its public launcher `silu_mul_per_token_group_quant_fp8_colmajor`
launches it for vLLM's DeepGEMM MoE experts without expert endpoints (dense [R, 2N] rows), use_ue8m0=False
(DeepGEMM's e8m0 scales are a Blackwell recipe; `is_deep_gemm_e8m0_used()` is False on H100/H200).

The timed call is the upstream Triton kernel launch alone, writing the spec's "q" [R, N] fp8 and "s" [R, N/G] fp32
column-major buffers directly.  The launcher takes a caller's q buffer but allocates its scales per call
(`torch.empty((N_2 // GROUP_SIZE, M)).transpose(0, 1)`, the spec's layout), so the adapter launches the
@triton.jit kernel itself with the launcher's arguments: grid (M / BLOCK_M, N_2 / BLOCK_N), BLOCK_M = 8,
BLOCK_N = GROUP_SIZE, y_s_col_stride = the scales' stride(-1), eps 1e-10, no clamp, alpha 1, beta 0, fp8 limits
from the platform's fp8 dtype (vLLM's `get_fp8_min_max()`, the launcher's own formula), no expert alignment,
default warps / stages (the launcher passes none).
"""

from __future__ import annotations

from harness.spec import Case, Inputs, Outputs, Prepared
from harness.specs.quantization._common import EPS
from upstream_adapters.quantization._common import UpstreamImpl

VLLM_FP8 = "vllm.model_executor.layers.quantization.utils.fp8_utils"
BLOCK_M = 8  # the launcher's constant (it asserts M % BLOCK_M == 0)


class VllmSiluMulFp8Quant(UpstreamImpl):
    kernel = "silu_mul_fp8_quant"
    provider = "vllm"
    dtypes = ("bf16",)
    package = "vllm"
    modules = (VLLM_FP8,)

    def case_reason(self, case: Case, dtype: str) -> str | None:
        p = case.params
        if p["R"] % p["G"] or p["R"] % BLOCK_M or p["N"] % p["G"]:
            return f"the launcher asserts M % GROUP_SIZE == 0, M % {BLOCK_M} == 0 and N_2 % GROUP_SIZE == 0"
        return None

    def prepare(self, inputs: Inputs, out: Outputs, case: Case, dtype: str) -> Prepared:
        assert isinstance(out, dict)
        fp8u = self.mod(VLLM_FP8)
        kernel = fp8u._silu_mul_per_token_group_quant_fp8_colmajor
        x, group = inputs["x"], int(case.params["G"])
        q, s = out["q"], out["s"]
        m, n = x.shape
        n_2 = n // 2
        assert x.is_contiguous() and q.is_contiguous() and s.stride(0) == 1, "layouts as the launcher's"
        assert m % group == 0 and m % BLOCK_M == 0 and n_2 % group == 0, (m, n_2, group)
        fp8_min, fp8_max = fp8u.get_fp8_min_max()
        grid = (m // BLOCK_M, n_2 // group)

        def fn() -> None:
            kernel[grid](y_ptr=x, y_q_ptr=q, y_s_ptr=s, expert_ends_ptr=None, M=m, N=n, y_s_col_stride=s.stride(-1),
                         eps=EPS, clamp_limit=0.0, alpha=1.0, beta=0.0, fp8_min=fp8_min, fp8_max=fp8_max,
                         use_ue8m0=False, HAS_CLAMP=False, GROUP_SIZE=group, BLOCK_M=BLOCK_M, BLOCK_N=group,
                         EXPERT_ALIGNMENT=0)

        return Prepared(fn, {"config": {"BLOCK_M": BLOCK_M, "BLOCK_N": group}, "config_source": "launcher constants",
                             "notes": self.notes("Triton _silu_mul_per_token_group_quant_fp8_colmajor launched as "
                                                 "silu_mul_per_token_group_quant_fp8_colmajor launches it (the "
                                                 "launcher allocates its scales), writing the spec's q / s buffers",
                                                 "use_ue8m0=False, no clamp, no expert endpoints")})


IMPLS = [VllmSiluMulFp8Quant()]
