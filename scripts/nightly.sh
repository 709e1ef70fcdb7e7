#!/usr/bin/env bash
# Nightly: benchmark every category, compare against this GPU's baseline run, build the report.
#
#   scripts/nightly.sh            (what `make nightly` and .github/workflows/nightly.yml run)
#
# The baseline of a GPU is the run id written in results/<gpu-slug>/BASELINE (one line), where <gpu-slug> is the
# new run's own (metadata.json gpu_slug): a run is only ever compared with a baseline of the same GPU, and
# `harness compare` refuses (exit 2) a base whose metadata names another GPU. Promote a run by writing its id
# there and committing it. Without a BASELINE the report is built without a comparison.
#
# Exit status: the bench's when it failed, else compare's (1 = a row is SLOWER or NOW-INCORRECT, 2 = the runs
# cannot be compared: another GPU, or an incomplete/corrupt run).
# Environment: HARNESS_PYTHON runs `-m harness` (default: the bench venv .venv-bench/bin/python that `make bench`
# builds, else python3); CATEGORY (default all) is passed to `make bench`.
set -uo pipefail

cd "$(dirname "$0")/.."
if [[ -n "${HARNESS_PYTHON:-}" ]]; then
    PY=$HARNESS_PYTHON
elif [[ -x .venv-bench/bin/python ]]; then
    PY=.venv-bench/bin/python
else
    PY=python3
fi
CATEGORY=${CATEGORY:-all}

bench_log=$(mktemp)
trap 'rm -f "$bench_log"' EXIT

make bench CATEGORY="$CATEGORY" 2>&1 | tee "$bench_log"
bench_rc=${PIPESTATUS[0]}

# the bench prints the new run folder as its last RUN_DIR= line
run_dir=$(grep -E '^RUN_DIR=' "$bench_log" | tail -n 1 | cut -d= -f2-)
if [[ -z "$run_dir" || ! -f "$run_dir/results.csv" ]]; then
    echo "nightly: the bench printed no RUN_DIR=<path> with a results.csv (bench exit $bench_rc)" >&2
    exit $(( bench_rc != 0 ? bench_rc : 2 ))
fi
echo "nightly: run $run_dir"
# for the workflow's upload step
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    echo "run_dir=$run_dir" >> "$GITHUB_OUTPUT"
fi

# this GPU's folder under results/, from the run's own metadata (not from where the run happened to be written)
slug=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("gpu_slug") or "")' "$run_dir/metadata.json")
if [[ -z "$slug" ]]; then
    echo "nightly: $run_dir/metadata.json has no gpu_slug: cannot pick this GPU's baseline" >&2
    exit 2
fi
gpu_dir=results/$slug
baseline_file="$gpu_dir/BASELINE"
compare_rc=0
if [[ -f "$baseline_file" ]]; then
    base_id=$(tr -d '[:space:]' < "$baseline_file")
    base_dir="$gpu_dir/$base_id"
    if [[ -z "$base_id" || ! -f "$base_dir/results.csv" ]]; then
        echo "nightly: $baseline_file names '$base_id', which is not a run folder under $gpu_dir" >&2
        exit 2
    fi
    echo "nightly: baseline $base_dir"
    "$PY" -m harness compare "$base_dir" "$run_dir" | tee "$run_dir/compare.txt"
    compare_rc=${PIPESTATUS[0]}
    "$PY" -m harness report "$run_dir" --against "$base_dir" || exit $?
else
    echo "nightly: no $baseline_file: report without comparison (promote a run: write its id there, commit)"
    "$PY" -m harness report "$run_dir" || exit $?
fi

if (( bench_rc != 0 )); then
    echo "nightly: bench failed (exit $bench_rc)" >&2
    exit "$bench_rc"
fi
if (( compare_rc != 0 )); then
    echo "nightly: regression against the baseline (compare exit $compare_rc): see $run_dir/compare.txt" >&2
fi
exit "$compare_rc"
