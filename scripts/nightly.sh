#!/usr/bin/env bash
# Nightly: benchmark every category, compare against this GPU's baseline run, build the report.
#
#   scripts/nightly.sh                  (what `make nightly` runs: one machine, the whole sweep)
#   SHARD=i/n scripts/nightly.sh        one shard of the sweep (`bench --shard i/n`), no comparison: a matrix
#                                       job of .github/workflows/nightly.yml, one per GPU runner
#   scripts/nightly.sh --merge RUN...   `harness merge` the shards' runs into results/<gpu>/<run-id>, then compare
#                                       and report as below (the workflow's final job); a missing or stopped
#                                       shard still gets its report (marked incomplete) and fails the nightly
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

incomplete=()
if [[ "${1:-}" == "--merge" ]]; then
    shift
    if (( $# == 0 )); then
        echo "nightly: --merge needs the shards' run folders" >&2
        exit 2
    fi
    # the merged run goes where a whole run would: results/<gpu>/<run id without the -shard<i>of<n> suffix>
    out=$("$PY" -c 'import json, re, sys
m = json.load(open(sys.argv[1] + "/metadata.json"))
print("results/%s/%s" % (m.get("gpu_slug") or "unknown", re.sub(r"-shard\d+of\d+$", "", m.get("run_id") or "merged")))' "$1")
    "$PY" -m harness merge "$@" -o "$out" --no-report 2>&1 | tee "$bench_log"
    bench_rc=${PIPESTATUS[0]}
    if (( bench_rc == 1 )); then
        incomplete=(--allow-incomplete)  # a shard is missing or stopped: compare and report what is there
    fi
else
    args=${ARGS:-}
    if [[ -n "${SHARD:-}" ]]; then
        args="$args --shard $SHARD"
    fi
    make bench CATEGORY="$CATEGORY" ARGS="$args" 2>&1 | tee "$bench_log"
    bench_rc=${PIPESTATUS[0]}
fi

# the bench prints the new run folder as its last RUN_DIR= line
run_dir=$(grep -E '^RUN_DIR=' "$bench_log" | tail -n 1 | cut -d= -f2-)
if [[ -z "$run_dir" || ! ( -f "$run_dir/results.csv.gz" || -f "$run_dir/results.csv" ) ]]; then
    echo "nightly: the bench printed no RUN_DIR=<path> with a results.csv(.gz) (bench exit $bench_rc)" >&2
    exit $(( bench_rc != 0 ? bench_rc : 2 ))
fi
echo "nightly: run $run_dir"
# for the workflow's upload step
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    echo "run_dir=$run_dir" >> "$GITHUB_OUTPUT"
fi

if [[ -n "${SHARD:-}" ]]; then  # one shard: the merge job compares the whole sweep
    exit "$bench_rc"
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
    if [[ -z "$base_id" || ! ( -f "$base_dir/results.csv.gz" || -f "$base_dir/results.csv" ) ]]; then
        echo "nightly: $baseline_file names '$base_id', which is not a run folder under $gpu_dir" >&2
        exit 2
    fi
    echo "nightly: baseline $base_dir"
    "$PY" -m harness compare ${incomplete[@]+"${incomplete[@]}"} "$base_dir" "$run_dir" | tee "$run_dir/compare.txt"
    compare_rc=${PIPESTATUS[0]}
    "$PY" -m harness report ${incomplete[@]+"${incomplete[@]}"} "$run_dir" --against "$base_dir" || exit $?
else
    echo "nightly: no $baseline_file: report without comparison (promote a run: write its id there, commit)"
    "$PY" -m harness report ${incomplete[@]+"${incomplete[@]}"} "$run_dir" || exit $?
fi

if (( bench_rc != 0 )); then
    echo "nightly: bench (or merge: a shard missing or stopped) failed (exit $bench_rc)" >&2
    exit "$bench_rc"
fi
if (( compare_rc != 0 )); then
    echo "nightly: regression against the baseline (compare exit $compare_rc): see $run_dir/compare.txt" >&2
fi
exit "$compare_rc"
