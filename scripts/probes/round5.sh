#!/usr/bin/env bash
# GPU probe, round 5 (H200, ~1 minute): after round 4 moved non-causal sageattn to 64 x 64 / 4-warp tiles
# (ports/configs/h200/round4.probe-20261204.txt: 2909 -> 2663 us at S=8192 Hq=32), does causal gain the same?
# Causal keeps 128 x 64 / 8 warps by default (1.00-1.47x of SageAttention at the models' shapes).
#
#     bash scripts/probes/round5.sh > $OUT/round5.txt
#
# CPU check: .venv/bin/python scripts/probes/shortfalls_check.py --script scripts/probes/round5.sh
. "$(dirname "$0")/probe_env.sh"

echo "== sageattn causal S=8192 Hq=32 (gemma3-27b): 64 x 64 / 4 warps vs the default"
$T $PY scripts/probes/port_configs.py sageattn '{"B": 1, "D": 128, "Hkv": 16, "Hq": 32, "S": 8192, "causal": 1}' \
    '{"sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 3}}' \
    || echo "(exit $?)"

echo "== sageattn causal S=16384 Hq=5 Hkv=1 (llama4-maverick): the same"
$T $PY scripts/probes/port_configs.py sageattn '{"B": 1, "D": 128, "Hkv": 1, "Hq": 5, "S": 16384, "causal": 1}' \
    '{"sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 3}}' \
    || echo "(exit $?)"

echo "== done in $(( $(date +%s) - START )) s"
