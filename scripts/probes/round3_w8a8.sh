#!/usr/bin/env bash
# GPU probe, round 3 (H200, one device call, ~2-3 minutes): w8a8_block_fp8_matmul (0.97x geomean vs SGLang's Triton
# `_w8a8_block_fp8_matmul`), its worst M = 2048 rows in results/h200/20261203T150503Z-all-d9c5cd48.  Run from the
# repo root:
#
#     bash scripts/probes/round3_w8a8.sh > $OUT/round3_w8a8.txt
#
# CPU check that every candidate builds for sm_90 (regs / spills / smem / grid per candidate):
#     .venv/bin/python scripts/probes/shortfalls_check.py --script scripts/probes/round3_w8a8.sh
# Ship a win (> 5 % over the block's default): scripts/probes/ship_probe.py (see its docstring).
# Calls are ordered by gap (largest first), so a cut-off run loses the smallest ones; "default" is timed first in
# every call.  15 candidates + 4 defaults.
#
# Port fields vs SGLang's: block_sizes = [BLOCK_SIZE_M, BLOCK_SIZE_N] (BLOCK_SIZE_K is the literal 128 scale block),
# l2_groupings = [GROUP_SIZE_M] (the generated pid order is SGLang's grouped order), num_warps / num_stages the
# same; host key k_chunk = K means no split-K (one launch), < K adds the fp32 [S, M, N] partials + `sum_splits`.
# "indexing" lists the five memory ops in order a, b, a_s, b_s, ws; "tensor_descriptor" on the first two makes the
# fp8 operand tiles TMA loads (SGLang and the port's default use pointer loads pipelined with cp.async).
# Upstream rows include a bf16 copy of C into the spec's buffer (both launchers allocate C): ~2.4 MB at N = 576,
# ~19 MB at N = 4608, a few us of their time; the port writes C in place, so the kernel-only gaps are a bit larger.
#
# Why 64-row / 4-warp tiles (both upstreams' choice on every one of these rows): the kernel folds the two block
# scales into the accumulator after every 128-K dot, so each step waits for its wgmma (one wgmma.wait per step in
# SGLang's PTX too) and holds the dot result next to the accumulator; within one CTA the tensor cores idle during
# the fold.  Co-resident CTAs cover each other's folds.  CTAs an SM below are min(65536 / (regs x threads),
# 228 KB / smem), from the CPU sm_90 compile (ptxas -v, no spills unless noted):
#   default 128x128 / 8 warps / 4 stages: 219 regs, 128 KB -> 1 CTA an SM.
#   64x128 / 4 warps / 3 stages (pointer): 191 regs, 72.5 KB -> 2 (SGLang's own compile of it: 194 regs, 72.5 KB).
#   64x128 / 4 warps / 3 stages, TMA a/b: 157 regs, 72.5 KB -> 3 (TMA frees the address registers).
#   64x64 / 4 warps / 3 stages: 123 regs (TMA 102), 48 KB -> 4 (SGLang's compile: 154 regs -> 3).
# (Helion's BoundKernel is shared across shapes and proves TMA alignment from weak references to the first call's
# tensors, so a later shape's TMA config fell back to pointer loads in one process: in the harness's workers and
# in the CPU check.  Both now compile through ports/_port.bound_with_args, which passes the real arguments.)
#
# kv_a_proj N=576 K=6144 M=2048 (longcat-flash-chat): Helion 49.7 us vs SGLang 39.4 (0.79x, the worst row).
#   Default: 128x128 / 8w / 4s, split-K 3 (k_chunk 2048): 16 x 5 = 80 tiles x 3 = 240 programs, 1 CTA an SM (1.8
#   waves), + 3 x 4.7 MB of fp32 partials written and read back by `sum_splits`; the last N tile is half masked
#   (576 = 4.5 x 128).  SGLang has no tuned file for (576, 6144): its launcher default 64x128, G 32, 4w, 3s, no
#   split (32 x 5 = 160 programs, 2 CTAs an SM) is what won.  Hypotheses: (1) that default closes the gap (no
#   reduce launch, 2 CTAs an SM); (2) SGLang's K=7168 tuned 64x64 (288 programs, 9 whole N tiles, 4 CTAs an SM);
#   (3) TMA on (1) (3 CTAs an SM); (4) TMA on (2).
# kv_a_proj N=576 K=7168 M=2048 (deepseek-v3; kimi-k2 / mistral-large-3 the same shape): Helion 53.0 vs SGLang
#   47.0 (0.89x), vLLM 48.8.  Default as above with k_chunk 2432.  SGLang's H200 file (N=576,K=7168, the 2048
#   entry): 64x64, GROUP_SIZE_M 64, 4w, 3s, no split: 288 programs all resident at once.  vLLM's file: 64x128,
#   G 32, 4w, 4 stages (96.5 KB, 2 CTAs an SM; 160 programs).  Hypotheses: (1) SGLang's config; (2) vLLM's;
#   (3) TMA on (1); (4) split-K 2 on (1) (576 programs + a 2-way reduce: does a deeper grid still pay once the
#   tiles are small?).
# dense_gate_up N=4608 K=7168 M=2048 (deepseek-v3): Helion 229 vs SGLang 208 (0.91x).  Default 128x128 / 8w / 4s:
#   16 x 36 = 576 programs = 4.36 waves of 132 at 1 CTA an SM (the fifth wave 36 % full, ~13 % tail:
#   `wave_block_n` accepts >= 75 % last-wave use).  SGLang's H200 file (2048 entry): 64x128, G 64, 4w, 3s: 1152
#   programs at 2 CTAs an SM (4.36 waves of half tiles, but CTAs retire unevenly so the tail spreads).
#   Hypotheses: (1) SGLang's config; (2) the same at 4 stages / G 8 (96.5 KB: still 2 CTAs an SM); (3) TMA on (1):
#   3 CTAs an SM, 1152 / 396 = 2.9 waves; (4) TMA on the default tiles (202 regs, still 1 CTA: TMA alone);
#   (5) (1) with 3 CTAs an SM forced the pointer way: maxnreg 168 (28 B spilled), which Helion only allows with a
#   persistent grid, so persistent_interleaved with 3 x 132 programs.
# dense_gate_up N=4096 K=7168 M=2048 (mistral-large-3): Helion 187 vs SGLang 172 (0.92x, 643 TFLOP/s).  512 tiles
#   = 3.88 waves (97 % of the last wave used): the tail cannot explain this gap, so a win here for 64-row / 4-warp
#   tiles is the occupancy effect alone.  SGLang has no tuned file: its default 64x128, G 32, 4w, 3s.  (1) that;
#   (2) TMA on it.
. "$(dirname "$0")/probe_env.sh"

echo "== w8a8 kv_a_proj N=576 K=6144 (longcat): default split-K 3 of 128x128/8w vs SGLang's launcher default, no split"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 6144, "M": 2048, "N": 576, "layer": "kv_a_proj"}' \
    '{"block_fp8_mm": {"k_chunk": 6144, "block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [32]}}' \
    '{"block_fp8_mm": {"k_chunk": 6144, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 3, "l2_groupings": [64]}}' \
    '{"block_fp8_mm": {"k_chunk": 6144, "block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [32], "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    '{"block_fp8_mm": {"k_chunk": 6144, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 3, "l2_groupings": [64], "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    || echo "(exit $?)"

echo "== w8a8 kv_a_proj N=576 K=7168 (deepseek-v3): default split-K 3 vs SGLang's / vLLM's tuned tiles"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 7168, "M": 2048, "N": 576, "layer": "kv_a_proj"}' \
    '{"block_fp8_mm": {"k_chunk": 7168, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 3, "l2_groupings": [64]}}' \
    '{"block_fp8_mm": {"k_chunk": 7168, "block_sizes": [64, 128], "num_warps": 4, "num_stages": 4, "l2_groupings": [32]}}' \
    '{"block_fp8_mm": {"k_chunk": 7168, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 3, "l2_groupings": [64], "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    '{"block_fp8_mm": {"k_chunk": 3584, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 3, "l2_groupings": [64]}}' \
    || echo "(exit $?)"

echo "== w8a8 dense_gate_up N=4608 K=7168 (deepseek-v3): 128x128/8w/4s (4.36 waves, 1 CTA/SM) vs 64x128/4w tiles"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 7168, "M": 2048, "N": 4608, "layer": "dense_gate_up"}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [64]}}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 4, "l2_groupings": [8]}}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [64], "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    '{"block_fp8_mm": {"indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [64], "maxnreg": 168, "pid_type": "persistent_interleaved", "num_sm_multiplier": 3}}' \
    || echo "(exit $?)"

echo "== w8a8 dense_gate_up N=4096 K=7168 (mistral-large-3): 3.88 waves, so the tile's own efficiency"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 7168, "M": 2048, "N": 4096, "layer": "dense_gate_up"}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [32]}}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 3, "l2_groupings": [32], "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    || echo "(exit $?)"

echo "== done in $(( $(date +%s) - START )) s"
