"""Compile Helion-generated Triton kernels for sm_90 (H100) on a machine without a GPU.

Helion's interpret mode runs kernel bodies in eager PyTorch, so it never sees the Triton code the GPU gets.
This helper generates that code for a given Config, captures the launch instead of running it (a custom
`_launcher`), and runs Triton's full compile pipeline (ttir -> ttgir -> llir -> ptx -> cubin with the bundled
ptxas) for target cuda:90.  It catches codegen and Triton compile errors, not numerical ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import helion
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

_TRITON_TYPES = {
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.float32: "fp32",
    torch.int32: "i32",
    torch.int64: "i64",
    torch.float8_e4m3fn: "fp8e4nv",
    torch.int8: "i8",
    torch.uint8: "u8",
}

H100 = GPUTarget("cuda", 90, 32)


@dataclasses.dataclass
class Compiled:
    name: str
    grid: tuple[int, ...]
    shared_bytes: int
    num_warps: int
    num_stages: int


def compile_for_sm90(kernel: helion.Kernel, args: Sequence[object], config: helion.Config) -> list[Compiled]:
    from ports._port import bound_with_args

    with bound_with_args(kernel, args) as bound:  # as the harness compiles (its docstring says why)
        host = bound.compile_config(config)
    launches: list[tuple[object, tuple[int, ...], tuple[object, ...], int, int]] = []

    def capture(k: object, grid: tuple[int, ...], *a: object, num_warps: int, num_stages: int,
                **_: object) -> None:
        launches.append((k, grid, a, num_warps, num_stages))

    host(*args, _launcher=capture)
    out = []
    for k, grid, a, nw, ns in launches:
        sig: dict[str, str] = {}
        constexprs: dict[str, object] = {}
        # what Triton's launcher specializes on: 16-byte aligned pointers and ints divisible by 16 get
        # tt.divisibility=16 (without it loads stay scalar and the K loop is never pipelined), ints equal to 1
        # become constants
        attrs: dict[tuple[int, ...], list[list[object]]] = {}
        for i, (param, v) in enumerate(zip(k.params, a, strict=True)):  # type: ignore[attr-defined]
            name = param.name
            if param.is_constexpr:
                sig[name] = "constexpr"
                constexprs[name] = v
            elif isinstance(v, int) and not isinstance(v, bool) and v == 1 and not param.do_not_specialize:
                sig[name] = "constexpr"
                constexprs[name] = 1
            elif isinstance(v, torch.Tensor):
                sig[name] = "*" + _TRITON_TYPES[v.dtype]
                if v.data_ptr() % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
            elif isinstance(v, bool):
                sig[name] = "i1"
            elif isinstance(v, int):
                sig[name] = "i64" if abs(v) >= 2**31 else "i32"
                if v % 16 == 0 and not param.do_not_specialize:
                    attrs[(i,)] = [["tt.divisibility", 16]]
            elif isinstance(v, float):
                sig[name] = "fp32"
            else:
                raise TypeError(f"argument {name}: cannot type {type(v).__name__} for Triton")
        c = triton.compile(ASTSource(fn=k, signature=sig, constexprs=constexprs, attrs=attrs), target=H100,
                           options={"num_warps": nw, "num_stages": ns})
        out.append(Compiled(k.__name__, tuple(grid), int(c.metadata.shared), nw, ns))  # type: ignore[attr-defined]
    return out
