#!/usr/bin/env bash
# Run a sweep on a lent GPU box with no internet (the device tool), bringing the run folder back as one file.
#   carry: .up (python-only upstream trees, scripts/fetch_upstreams.py) and .whl (wheels, --wheelhouse)
#   usage: bash scripts/device_bench.sh <make bench args...>     e.g. CATEGORY=moe ARGS="--quick"
# Writes $OUT/run.tgz (the run folder) and $OUT/bench.log.
set -uo pipefail
: "${OUT:?OUT must point at the folder that comes back}"
export PYTHONUNBUFFERED=1 HELION_AUTOTUNE_BENCHMARK_SUBPROCESS=0
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
make bench WHEELS=.whl "$@" 2>&1 | tee "$OUT/bench.log"
rc=${PIPESTATUS[0]}
run_dir=$(grep '^RUN_DIR=' "$OUT/bench.log" | tail -n 1 | cut -d= -f2-)
if [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
  tar -czf "$OUT/run.tgz" -C "$(dirname "$run_dir")" "$(basename "$run_dir")"
  echo "packed $run_dir -> run.tgz ($(du -h "$OUT/run.tgz" | cut -f1))"
fi
exit "$rc"
