#!/usr/bin/env bash
# GPU probe, round 6 (H200, ~1-2 minutes): sageattn non-causal at 16k tokens, the rows still behind SageAttention
# after 64 x 64 / 4-warp tiles became the default (results/h200/20261204T174913Z-all-df118310: gemma3-27b
# S=16384 Hq=32 bf16 10772 us vs 10211, fp16 10974 vs 10118).  Candidates: a deeper (4) and a shallower (2)
# pipeline, and 64 x 128 key blocks (half the online-softmax rescales per key).
#
#     bash scripts/probes/round6.sh > $OUT/round6.txt
#
# CPU check: .venv/bin/python scripts/probes/shortfalls_check.py --script scripts/probes/round6.sh
. "$(dirname "$0")/probe_env.sh"

echo "== sageattn non-causal S=16384 Hq=32 fp16 (gemma3-27b): pipeline depth, 128-key blocks"
$T $PY scripts/probes/port_configs.py sageattn '{"B": 1, "D": 128, "Hkv": 16, "Hq": 32, "S": 16384, "causal": 0}' \
    '{"sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 4}}' \
    '{"sage_attn": {"block_sizes": [64, 64], "num_warps": 4, "num_stages": 2}}' \
    '{"sage_attn": {"block_sizes": [64, 128], "num_warps": 4, "num_stages": 2}}' \
    --dtype fp16 || echo "(exit $?)"

echo "== done in $(( $(date +%s) - START )) s"
