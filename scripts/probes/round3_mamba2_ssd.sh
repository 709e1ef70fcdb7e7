#!/usr/bin/env bash
# GPU probe, round 3 (H200, one device call, ~1.5-2 minutes): mamba2_ssd at mamba2-2.7b (125 us vs vLLM 103,
# mamba_ssm 114, SGLang 111), T=2048, H=80, P=64, N=128, G=1, chunk 256 (8 chunks).  Run from the repo root:
#
#     bash scripts/probes/round3_mamba2_ssd.sh > $OUT/round3_mamba2_ssd.txt
#
# CPU check that every candidate builds for sm_90 (0 failing launches):
#     .venv/bin/python scripts/probes/shortfalls_check.py --script scripts/probes/round3_mamba2_ssd.sh
# Literal JSON on every line (the checker reads the calls as text).  Every call is --per-launch, so the default's
# own breakdown (shortfalls2.sh's question) comes with each.
#
# Cost model per launch (H200: 132 SMs, ~4.5 TB/s, ~790 bf16 TFLOP/s dense); compile facts from the sm_90 compile:
#   1 cumsum   grid 640 ([1, 256] per (head, chunk)), 21 regs; 1.6 MB (dt read, d and dA cumsum written, all with
#              stride H): latency-bound, ~2-4 us.  No config to probe (its tile is fixed by the chunk).
#   2 states   grid 560 (7 chunks x 80 heads, [64 P, 128 N] tile, K = 256 in 64-token steps), 138 regs, 49.6 KB smem
#              -> 3 CTAs/SM = 396 slots: 1.4 waves.  2.35 GFLOP (~3 us of tensor time), 37 MB (x read, fp32 states
#              written) -> ~9-12 us.
#   3 passing  grid 640 (1024-element [P N] slices x 80 heads), 32 regs, all resident; serial over 7 chunks, each
#              step one dependent DRAM round trip; reads 18 MB fp32, writes 21 MB fp32 -> ~10-15 us.  Only 2.6 MB
#              is in flight per step whatever the slice (every program is resident), and range_num_stages does not
#              pipeline it (0 cp.async at [3]), so slices are not the lever; bytes are.
#   4 scan     grid 2560 (80 heads x 32 row blocks of 64), 161 regs, 82.4 KB smem (2 stages) -> 2 CTAs/SM = 8 warps:
#              9.7 waves, wgmma.  ~20 MFLOP per (head, chunk) = 12.8 GFLOP, of which C B^T is 6.7 GFLOP: it is
#              recomputed for every head (G = 1: 80x the 84 MFLOP vLLM's _bmm_chunk_fwd does once).  63 MB (x, fp32
#              start states 21 MB, y) -> >= 14 us of bytes, ~20-40 us of tensor time at realistic wgmma rates: the
#              likely bulk of the 125 us.
#
# Hypotheses (A-B structural, behind config fields whose defaults keep today's plan; C-E configs):
# A start_bf16 (state passing entry): start states stored bf16 in a second buffer (the scan casts them to bf16 for
#   its dot anyway: the output is bit-identical).  The passing's stores and the scan's state loads halve (-10.5 MB
#   each, -21 MB in all): ~-5 us, passing 32 -> 31 regs, 4 -> 2 st.global.  vLLM/mamba_ssm store them in C's dtype.
# B ssd_cb_kernel entry: C B^T once per (chunk, group) into an fp32 [NC*Q, G, Q] scratch (grid 128, 72 regs, 32 KB
#   smem), the scan loads it (16 KB fp32 per [64, 64] block, the bytes of the B block it replaces) instead of one
#   [64, 128] x [128, 64] dot per block: 20 -> 12 wgmma, 161 -> 139 regs, 82.4 -> 74.2 KB smem, 88 -> 56 cp.async.
#   Saves the 6.7 GFLOP (~8-15 us) for one extra ~3 us launch; vLLM's layout (its _bmm_chunk_fwd + _chunk_scan_fwd).
# C scan occupancy: 2 CTAs/SM (smem-bound, 82.4 KB) hides little latency.  num_stages 1: 168 regs, 32.8 KB, 3 CTAs/SM,
#   no cp.async (also vLLM's sm90 rule: it drops BLOCK_M%64==0 / 4-warp / num_stages>1 configs as a wgmma register
#   race, which is our default; the gate of every candidate would show NaN rows).  8 warps: 127 regs, 16 warps/SM.
#   Column block 32 ([64, 32]): 96 regs, 57.6 KB -> 3 CTAs/SM, finer causal edge; with 8 warps 83 regs -> 3 CTAs of
#   8 warps = 24 warps/SM.  (block_m 128 / 8 warps was left out: 164 regs x 256 threads -> 1 CTA/SM.)  B + A +
#   column block 32: 102 regs, 53.5 KB -> 4 CTAs/SM.
# D states: 1.4 waves at [64, 128]; [64, 64, 64] has 1120 programs, 72 regs, 33.3 KB (6 CTAs/SM: 792 slots, 1.4
#   waves of half-size tiles, B loaded twice); [64, 128, 32] x 3 stages keeps 560 programs with 128 regs and 37.4 KB
#   (4 CTAs/SM: 528 slots, ~1 wave, a deeper pipeline).
# E passing 256-element slices: 2560 programs, 21 regs; control for "slices are not the lever" (expect no change).
. "$(dirname "$0")/probe_env.sh"

echo "== mamba2_ssd A/B: bf16 start states, C B^T once per (chunk, group), both"
$T $PY scripts/probes/port_configs.py mamba2_ssd '{"G": 1, "H": 80, "N": 128, "P": 64, "T": 2048, "batch": 1, "chunk": 256}' \
    '{"ssd_state_passing_kernel": {"start_bf16": 1}}' \
    '{"ssd_cb_kernel": {"chunk": 256, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 1}}' \
    '{"ssd_cb_kernel": {"chunk": 256, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 1}, "ssd_state_passing_kernel": {"start_bf16": 1}}' \
    --per-launch || echo "(exit $?)"

echo "== mamba2_ssd C: scan occupancy (1 stage, 8 warps, column block 32 at 4 and 8 warps), B + A + column block 32"
$T $PY scripts/probes/port_configs.py mamba2_ssd '{"G": 1, "H": 80, "N": 128, "P": 64, "T": 2048, "batch": 1, "chunk": 256}' \
    '{"ssd_scan_kernel": {"num_stages": 1}}' \
    '{"ssd_scan_kernel": {"num_warps": 8}}' \
    '{"ssd_scan_kernel": {"block_sizes": [64, 32]}}' \
    '{"ssd_scan_kernel": {"block_sizes": [64, 32], "num_warps": 8}}' \
    '{"ssd_cb_kernel": {"chunk": 256, "block_sizes": [64, 64], "num_warps": 4, "num_stages": 1}, "ssd_state_passing_kernel": {"start_bf16": 1}, "ssd_scan_kernel": {"block_sizes": [64, 32]}}' \
    --per-launch || echo "(exit $?)"

echo "== mamba2_ssd D/E: chunk-state tiles, state-passing slices"
$T $PY scripts/probes/port_configs.py mamba2_ssd '{"G": 1, "H": 80, "N": 128, "P": 64, "T": 2048, "batch": 1, "chunk": 256}' \
    '{"ssd_state_kernel": {"block_sizes": [64, 64, 64]}}' \
    '{"ssd_state_kernel": {"block_sizes": [64, 128, 32], "num_stages": 3}}' \
    '{"ssd_state_passing_kernel": {"block_sizes": [256]}}' \
    --per-launch || echo "(exit $?)"

echo "== done in $(( $(date +%s) - START )) s"
