#!/usr/bin/env bash
# GPU probe, round 4 (H200, one device call, ~3-4 minutes): the rows still behind the best upstream after the
# 2026-12-04 reworks (results/h200/20261204T154218Z-all-8ecc0452, 20261204T160525Z-all-13e98f89).  Run from the
# repo root:
#
#     bash scripts/probes/round4.sh > $OUT/round4.txt
#
# CPU check that every candidate builds for sm_90:
#     .venv/bin/python scripts/probes/shortfalls_check.py --script scripts/probes/round4.sh
# Ship a win (> 5 % over the block's default): scripts/probes/ship_probe.py; a rule that wins across shapes goes
# into the port's defaults instead.  Literal JSON on every line (the checker reads the calls as text).
#
# w8a8_block_fp8_matmul M=128 N=7168 K=2304 (deepseek-v3 dense_down): 28.2 us vs vLLM 20.3 (0.72x).  The default
#   (M <= 128) is 64 x 128 / 4 warps / 4 stages, pointer loads: 2 x 56 = 112 tiles < 2 per SM, so split-K 3 (k_chunk
#   768) + `sum_splits`.  vLLM's and SGLang's H200 files (M=128): 64 x 64, GROUP_SIZE_M 64, 4 warps, 4 stages, no
#   split (224 programs).  Hypotheses: (1) their tile, no split; (2) the same with TMA fp8 operands (the prefill
#   rule's win: 9-24 %); (3) the prefill rule itself (64 x 128 TMA, 3 stages) without split.
# w8a8 M=32 N=7168 K=1152 (kimi-k2 dense_down): 14.5 us vs vLLM 12.9 (0.89x); K=2304 (deepseek-v3): 19.0 vs 18.4
#   (0.97x).  Default (M <= 64): [32, 32] tiles (224 programs) and split-K 2 + `sum_splits`; both upstreams run
#   64 x 64 (16-row M padding wasted), 4 stages, no split (112 programs).  Hypotheses: no split at [32, 32] / [32, 64];
#   TMA on those.
# mamba2_ssd T=16384 (mamba2-2.7b): 747 us vs vLLM 646 (0.86x), 64 chunks.  The defaults now keep start states in
#   bf16 and run the scan unpipelined.  --per-launch says where the 747 us go at this length; candidates: C B^T once
#   per (chunk, group) + a [64, 32] scan column block (113.1 us at T=2048 with a pipelined scan, the best there),
#   the scan at 8 warps unpipelined, and 256-element state-passing slices (more programs in flight for its 64
#   serial steps).
# sageattn non-causal S=8192 Hq=32 (gemma3-27b): 3087 us vs SageAttention 2694 (0.87x).  Tiles: 128 x 128 / 8 warps
#   / 2 stages (SageAttention's BLOCK_N is 64 with BLOCK_M 128, 8 warps, 3 stages: the port's default), 4 stages,
#   and 64-row Q blocks.  (Merge wip/sageattn-noncausal-unmasked first: it drops the per-block past-the-end mask.)
. "$(dirname "$0")/probe_env.sh"

echo "== w8a8 M=128 N=7168 K=2304: upstreams' 64x64 no split, with TMA, and the prefill rule"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 2304, "M": 128, "N": 7168, "layer": "dense_down"}' \
    '{"block_fp8_mm": {"block_sizes": [64, 64], "k_chunk": 2304, "l2_groupings": [64], "num_warps": 4, "num_stages": 4}}' \
    '{"block_fp8_mm": {"block_sizes": [64, 64], "k_chunk": 2304, "l2_groupings": [64], "num_warps": 4, "num_stages": 4, "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    '{"block_fp8_mm": {"block_sizes": [64, 128], "k_chunk": 2304, "l2_groupings": [32], "num_warps": 4, "num_stages": 3, "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    || echo "(exit $?)"

echo "== w8a8 M=32 N=7168 K=1152 (kimi-k2): no split-K, TMA"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 1152, "M": 32, "N": 7168, "layer": "dense_down"}' \
    '{"block_fp8_mm": {"block_sizes": [32, 32], "k_chunk": 1152, "num_warps": 4, "num_stages": 5}}' \
    '{"block_fp8_mm": {"block_sizes": [32, 64], "k_chunk": 1152, "num_warps": 4, "num_stages": 4}}' \
    '{"block_fp8_mm": {"block_sizes": [32, 64], "k_chunk": 1152, "num_warps": 4, "num_stages": 4, "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    || echo "(exit $?)"

echo "== w8a8 M=32 N=7168 K=2304 (deepseek-v3): the same"
$T $PY scripts/probes/port_configs.py w8a8_block_fp8_matmul '{"K": 2304, "M": 32, "N": 7168, "layer": "dense_down"}' \
    '{"block_fp8_mm": {"block_sizes": [32, 32], "k_chunk": 2304, "num_warps": 4, "num_stages": 5}}' \
    '{"block_fp8_mm": {"block_sizes": [32, 64], "k_chunk": 2304, "num_warps": 4, "num_stages": 4}}' \
    '{"block_fp8_mm": {"block_sizes": [32, 64], "k_chunk": 2304, "num_warps": 4, "num_stages": 4, "indexing": ["tensor_descriptor", "tensor_descriptor", "pointer", "pointer", "pointer"]}}' \
    || echo "(exit $?)"

echo "== mamba2_ssd T=16384: per launch; C B^T once + [64, 32] scan blocks, scan 8 warps, 256-element passing slices"
$T $PY scripts/probes/port_configs.py mamba2_ssd '{"G": 1, "H": 80, "N": 128, "P": 64, "T": 16384, "batch": 1, "chunk": 256}' \
    '{"ssd_cb_kernel": {"chunk": 256, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 1}, "ssd_scan_kernel": {"block_sizes": [64, 32]}}' \
    '{"ssd_scan_kernel": {"block_sizes": [64, 32]}}' \
    '{"ssd_scan_kernel": {"num_warps": 8}}' \
    '{"ssd_state_passing_kernel": {"block_sizes": [256]}}' \
    --per-launch || echo "(exit $?)"

echo "== sageattn non-causal S=8192 Hq=32: 128x128 tiles, deeper pipeline, 64-row Q blocks"
$T $PY scripts/probes/port_configs.py sageattn '{"B": 1, "D": 128, "Hkv": 16, "Hq": 32, "S": 8192, "causal": 0}' \
    '{"sage_attn": {"block_sizes": [128, 128], "num_warps": 8, "num_stages": 2}}' \
    '{"sage_attn": {"block_sizes": [128, 64], "num_warps": 8, "num_stages": 4}}' \
    '{"sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 3}}' \
    --per-launch || echo "(exit $?)"

echo "== done in $(( $(date +%s) - START )) s"
