#!/usr/bin/env bash
# Run harness commands on a lent GPU box with no internet (the device tool), bringing results back as files.
#   carry: .carry (upstream zips from `scripts/fetch_upstreams.py --zip`, hard-linked into .carry/up by
#          `bash scripts/device_bench.sh pack-carry` here) and .whl (wheels, `fetch_upstreams.py --wheelhouse`)
#   usage: bash scripts/device_bench.sh pack-carry [--category C] [--kernel K,...] [--impl P,...]   (here: zips)
#          bash scripts/device_bench.sh setup                      venv + wheels (once; later calls skip it)
#          bash scripts/device_bench.sh bench|check <harness args>  e.g. bench --category moe --quick
#          bash scripts/device_bench.sh tune <scripts/tune.py args>
#   env:   TAG (names $OUT/<TAG>.log and $OUT/<TAG>.tgz; default the subcommand), BENCH_TIMEOUT (seconds,
#          default 540: stop before the device call's own limit so what was written still comes back),
#          CUDA_VISIBLE_DEVICES (to run two commands side by side on a two-GPU box),
#          HELION_BENCH_GIT_COMMIT (the full commit id of the tree sent: the box's own .git, if any, is stale)
# A bench/check packs its run folder (plus the availability matrix a check writes) into $OUT/<TAG>.tgz; a tune
# copies the config files it wrote to $OUT/configs/<gpu>/.  Nothing is fetched on the device.
set -uo pipefail
cmd=${1:?usage: device_bench.sh setup|pack-carry|bench|check|tune [args...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$cmd" = pack-carry ]; then  # here, before a device call: one folder to carry instead of 13 zips
  # with harness selection args (--category/--kernel/--impl), only the zips that selection's adapters import
  # (`harness upstreams`): the carry limit leaves room for a few of the 31 MB, not all of them
  rm -rf .carry/up && mkdir -p .carry/up
  if [ $# -gt 0 ]; then
    names=$("${PYTHON:-.venv/bin/python}" -m harness upstreams "$@") || exit 2
    for n in $names; do
      if [ -f ".up/$n.zip" ]; then ln ".up/$n.zip" .carry/up/
      else echo "warning: .up/$n.zip missing (scripts/fetch_upstreams.py --zip --only $n): its rows will say unavailable" >&2
      fi
    done
  else
    ln .up/*.zip .carry/up/
  fi
  du -sh .carry .whl
  exit 0
fi

: "${OUT:?OUT must point at the folder that comes back}"
export PYTHONUNBUFFERED=1 HELION_AUTOTUNE_BENCHMARK_SUBPROCESS=0
[ -d .carry/up ] && export HELION_BENCH_UPSTREAM_CACHE="$root/.carry/up"
tag=${TAG:-$cmd}

setup() {
  # one setup even when two commands start together (flock), skipped once done
  (
    flock 9
    [ -f .venv-bench/.devstamp ] && exit 0
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
    make .venv-bench/.stamp WHEELS=.whl > "$OUT/setup.log" 2>&1 || { cat "$OUT/setup.log"; exit 1; }
    # the upstreams' small runtime deps (pydantic, msgspec, ...) travel as wheels too: no index there
    .venv-bench/bin/python -m pip install -q --no-index --no-deps .whl/*.whl >> "$OUT/setup.log" 2>&1
    touch .venv-bench/.devstamp
  ) 9> /tmp/helion-bench-setup.lock
}

[ -n "${HELION_BENCH_GIT_COMMIT:-}" ] || echo "warning: HELION_BENCH_GIT_COMMIT unset: the run metadata may name a stale commit" >&2
setup || exit 1
[ "$cmd" = setup ] && exit 0

case "$cmd" in
  bench|check) runner=(.venv-bench/bin/python -m harness "$cmd") ;;
  tune) runner=(.venv-bench/bin/python scripts/tune.py) ;;
  *) echo "unknown subcommand $cmd" >&2; exit 2 ;;
esac
timeout "${BENCH_TIMEOUT:-540}" "${runner[@]}" "$@" > "$OUT/$tag.log" 2>&1
rc=$?
tail -n 25 "$OUT/$tag.log"
if [ "$cmd" = tune ]; then
  mkdir -p "$OUT/configs" && cp -r ports/configs/. "$OUT/configs/"
  echo "configs -> $OUT/configs"
else
  run_dir=$(grep -o '/[^ ]*results/[^ ]*' "$OUT/$tag.log" | head -n 1)
  if [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
    # stopped by BENCH_TIMEOUT (its writer is dead): compress the plain table and samples it left, as a finished
    # run has them; the run stays marked incomplete
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      .venv-bench/bin/python -m harness pack --allow-incomplete "$run_dir" || true
    fi
    extra=$(cd "$(dirname "$run_dir")" && ls availability.csv availability.md 2>/dev/null)
    tar -czf "$OUT/$tag.tgz" -C "$(dirname "$run_dir")" "$(basename "$run_dir")" $extra
    echo "packed $run_dir -> $tag.tgz ($(du -h "$OUT/$tag.tgz" | cut -f1))"
  fi
fi
exit "$rc"
