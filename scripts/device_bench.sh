#!/usr/bin/env bash
# Run a sweep on a lent GPU box with no internet (the device tool), bringing the run folder back as one file.
#   carry: .up (python-only upstream trees, scripts/fetch_upstreams.py) and .whl (wheels, --wheelhouse)
#   usage: bash scripts/device_bench.sh bench|check <harness args...>   e.g. bench --category moe --quick
# (the upstream trees arrive as .up/<name>.zip, which the loader unpacks; nothing is fetched there)
# Writes $OUT/run.tgz (the run folder) and $OUT/bench.log.
set -uo pipefail
: "${OUT:?OUT must point at the folder that comes back}"
export PYTHONUNBUFFERED=1 HELION_AUTOTUNE_BENCHMARK_SUBPROCESS=0
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
make .venv-bench/.stamp WHEELS=.whl > "$OUT/setup.log" 2>&1 || { cat "$OUT/setup.log"; exit 1; }
# the upstreams' small runtime deps (pydantic, msgspec, ...) travel as wheels too: no index there
.venv-bench/bin/python -m pip install -q --no-index --no-deps .whl/*.whl >> "$OUT/setup.log" 2>&1
# stop the sweep before the device call's own limit so the rows written so far still come back packed
timeout "${BENCH_TIMEOUT:-540}" .venv-bench/bin/python -m harness "$@" 2>&1 | tee "$OUT/bench.log"
rc=${PIPESTATUS[0]}
run_dir=$(grep -o '/[^ ]*results/[^ ]*' "$OUT/bench.log" | head -n 1)
if [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
  # the run folder, plus the availability matrix a `check` writes beside it
  extra=$(cd "$(dirname "$run_dir")" && ls availability.csv availability.md 2>/dev/null)
  tar -czf "$OUT/run.tgz" -C "$(dirname "$run_dir")" "$(basename "$run_dir")" $extra
  echo "packed $run_dir -> run.tgz ($(du -h "$OUT/run.tgz" | cut -f1))"
fi
exit "$rc"
