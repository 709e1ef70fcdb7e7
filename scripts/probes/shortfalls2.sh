#!/usr/bin/env bash
# GPU probe, round 2 (H200, one device call, ~1-2 minutes): what the first round (shortfalls.sh, output in
# ports/configs/h200/shortfalls.probe-20261203.txt) left open.  Run from the repo root:
#
#     bash scripts/probes/shortfalls2.sh > $OUT/shortfalls2.txt
#
# CPU check that every candidate builds for sm_90:
#     .venv/bin/python scripts/probes/shortfalls_check.py --script scripts/probes/shortfalls2.sh
# Ship a win (> 5 % over the block's default): scripts/probes/ship_probe.py (see its docstring).
#
# sageattn  Round 1 at Hq=5 (80 programs): BLOCK_M 64 / 4 warps 83.8 -> 75.9 us and the K colsum at 128-row steps /
#   8 warps / pipelined 83.8 -> 75.0 (shipped for that bucket), measured apart.  The two touch different launches,
#   so together they should add up (~67 us vs SageAttention 75.4): measure the combination there, and the same three
#   at Hq=8 (grok-2, qwen3-235b: 128 programs, 0.89x) where nothing is shipped.
# causal_conv1d  Round 1 at dim=2048: 8 -> 4 warps on the [32, 128] tile took 21.5 -> 13.4 us; the default is now
#   4 warps.  Confirm at mamba2's dim=5376 (0.92x, 40.6 us vs SGLang 38.0): the old 8-warp tile is the control,
#   [16, 128] the round-1 winner, vLLM's [8, 256] the other shape.
# mamba2_ssd  0.83x (125 vs vLLM 103 us at mamba2-2.7b, 2048 tokens): four launches (cumsum, chunk states, state
#   passing, scan); --per-launch times each alone to say which one to work on.
# lora_shrink / sglang_qkv_lora_b at T=32: ~9-12 us latency-bound calls.  lora_shrink runs a split-K kernel and a
#   reduce (2 launches) where vLLM runs one; sglang_qkv_lora_b's one launch is 2 us behind SGLang's.
. "$(dirname "$0")/probe_env.sh"

echo "== sageattn Hq=5: the two round-1 wins together"
$T $PY scripts/probes/port_configs.py sageattn '{"B": 1, "D": 128, "Hkv": 1, "Hq": 5, "S": 2048, "causal": 1}' \
    '{"sage_k_colsum": {"block_sizes": [128], "num_warps": 8, "range_num_stages": [0, 3]}}' \
    '{"sage_k_colsum": {"block_sizes": [128], "num_warps": 8, "range_num_stages": [0, 3]}, "sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 3}}' \
    '{"sage_k_colsum": {"block_sizes": [128], "num_warps": 8, "range_num_stages": [0, 3]}, "sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 4}}' \
    --per-launch || echo "(exit $?)"
echo "== sageattn Hq=8: the same at 128 programs"
$T $PY scripts/probes/port_configs.py sageattn '{"B": 1, "D": 128, "Hkv": 1, "Hq": 8, "S": 2048, "causal": 1}' \
    '{"sage_k_colsum": {"block_sizes": [128], "num_warps": 8, "range_num_stages": [0, 3]}}' \
    '{"sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 3}}' \
    '{"sage_k_colsum": {"block_sizes": [128], "num_warps": 8, "range_num_stages": [0, 3]}, "sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 3}}' \
    || echo "(exit $?)"

echo "== causal_conv1d dim=5376: the 4-warp default against the old 8 warps and the round-1 winner"
$T $PY scripts/probes/port_configs.py causal_conv1d '{"T": 2048, "W": 4, "batch": 1, "dim": 5376}' \
    '{"conv1d_fwd_kernel": {"block_sizes": [32, 128, 1, 256], "num_warps": 8}}' \
    '{"conv1d_fwd_kernel": {"block_sizes": [16, 128, 1, 256], "num_warps": 4}}' \
    '{"conv1d_fwd_kernel": {"block_sizes": [8, 256, 1, 256], "num_warps": 4}}' \
    || echo "(exit $?)"

echo "== mamba2_ssd: where the 125 us go (vLLM 103 us): each of the four launches alone"
$T $PY scripts/probes/port_configs.py mamba2_ssd '{"G": 1, "H": 80, "N": 128, "P": 64, "T": 2048, "batch": 1, "chunk": 256}' \
    --per-launch || echo "(exit $?)"

echo "== lora_shrink T=32: split-K + reduce (2 launches, 9.2 us) vs one launch (vLLM 8.2 us)"
$T $PY scripts/probes/port_configs.py lora_shrink '{"H": 5120, "L": 4, "N": 5120, "S": 1, "T": 32, "r": 16}' \
    '{"lora_shrink_split_kernel": null, "lora_shrink_reduce": null, "lora_shrink_kernel": {"block_m": 16, "split_k": 1, "block_sizes": [16, 256], "num_warps": 4, "num_stages": 4}}' \
    '{"lora_shrink_split_kernel": {"split_k": 4}}' \
    '{"lora_shrink_split_kernel": {"split_k": 16}}' \
    --per-launch || echo "(exit $?)"

echo "== sglang_qkv_lora_b T=32: one latency-bound launch (11.3 us vs SGLang 9.1); wider N tiles, stages"
$T $PY scripts/probes/port_configs.py sglang_qkv_lora_b '{"H": 5120, "L": 4, "N": 640, "Nkv": 128, "T": 32, "layer": "qkv", "r": 16}' \
    '{"lora_expand_kernel": {"block_sizes": [64, 16]}}' \
    '{"lora_expand_kernel": {"block_sizes": [128, 16]}}' \
    '{"lora_expand_kernel": {"block_sizes": [64, 16], "num_stages": 1}}' \
    '{"lora_expand_kernel": {"block_sizes": [16, 16], "num_warps": 2}}' \
    || echo "(exit $?)"

echo "== done in $(( $(date +%s) - START )) s"
