#!/usr/bin/env bash
# The whole sweep on a SLURM cluster: one array task per shard (`harness bench --shard i/n`, all the GPUs of its
# node at once with --gpus), then a merge job that starts when every task has ended (afterany: a dead shard still
# gets merged, and the merged run says which shard and rows are missing).
#
#   scripts/slurm_bench.sh [SHARDS] [bench args...]     e.g. scripts/slurm_bench.sh 8 --category all --quick
#
# Submit from the repository root of a checkout every node sees (shared filesystem); the bench venv
# (.venv-bench, `make bench` builds it) and the upstream trees (.up/, `make upstreams`) must exist there first.
# Every task plans the same sweep from the same commit and the same committed row costs, so the shards are
# disjoint and their union is the plan. Shard runs go to results/<gpu>/<run id>-shard<i>of<n> and the merged run to
# results/<gpu>/<run id>; the merge step prints RUN_DIR=<merged run> in its log and exits 1 when a shard is
# missing or stopped (rerun that shard with the same arguments and merge again).
# Environment: GPUS_PER_NODE (default 8), PARTITION, ACCOUNT, TIME (default 06:00:00), HARNESS_PYTHON (default
# .venv-bench/bin/python).
set -euo pipefail

cd "$(dirname "$0")/.."
SHARDS=${1:-4}
shift || true
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
PY=${HARNESS_PYTHON:-.venv-bench/bin/python}
TIME=${TIME:-06:00:00}
if ! [[ "$SHARDS" =~ ^[1-9][0-9]*$ ]]; then
    echo "slurm_bench: SHARDS must be a positive integer, got '$SHARDS'" >&2
    exit 2
fi
if [[ ! -x "$PY" ]]; then
    echo "slurm_bench: no $PY: run \`make upstreams\` (builds .venv-bench and .up/) on a node first" >&2
    exit 2
fi
commit=$(git rev-parse HEAD)
opts=(--parsable ${PARTITION:+--partition="$PARTITION"} ${ACCOUNT:+--account="$ACCOUNT"})
gpus=$(seq -s, 0 $((GPUS_PER_NODE - 1)))
stage=$(mktemp -d "${TMPDIR:-/tmp}/slurm-bench.XXXXXX")
printf '%q ' "$@" > "$stage/args"

# array task i: shard i/SHARDS on all the GPUs of its node; its run folder's path goes to $stage/shard-<i>
array_id=$(sbatch "${opts[@]}" --job-name=hb-shard --array=0-$((SHARDS - 1)) --nodes=1 --exclusive \
    --gres=gpu:"$GPUS_PER_NODE" --time="$TIME" --output="$stage/shard-%a.log" --wrap "
set -o pipefail
cd $(printf '%q' "$PWD")
export HELION_BENCH_GIT_COMMIT=$commit
eval set -- \$(cat $stage/args)
$PY -m harness bench \"\$@\" --shard \$SLURM_ARRAY_TASK_ID/$SHARDS --gpus $gpus --no-report \\
    | tee /dev/stderr | sed -n 's/^RUN_DIR=//p' > $stage/shard-\$SLURM_ARRAY_TASK_ID")

# the merge: after every array task ended, however it ended
merge_id=$(sbatch "${opts[@]}" --job-name=hb-merge --dependency=afterany:"$array_id" --ntasks=1 \
    --time=01:00:00 --output="$stage/merge.log" --wrap "
cd $(printf '%q' "$PWD")
runs=\$(cat $stage/shard-* 2>/dev/null | grep -v '^\$' || true)
first=\$(echo \"\$runs\" | head -n 1)
if [[ -z \"\$first\" ]]; then echo 'slurm_bench: no shard wrote a run folder' >&2; exit 2; fi
out=\$($PY -c 'import json, re, sys
m = json.load(open(sys.argv[1] + \"/metadata.json\"))
print(\"results/%s/%s\" % (m[\"gpu_slug\"], re.sub(r\"-shard[0-9]+of[0-9]+\$\", \"\", m[\"run_id\"])))' \"\$first\")
$PY -m harness merge \$runs -o \"\$out\"")

echo "submitted: shards $array_id (array 0-$((SHARDS - 1)), $GPUS_PER_NODE GPUs each), merge $merge_id"
echo "logs: $stage/shard-<i>.log, $stage/merge.log"
