# Sourced by the GPU probe scripts (shortfalls*.sh): the repo root as cwd, PYTHONPATH, $PY (PYTHON or python3),
# $T (one stuck port_configs.py call must not eat the device call: each gets at most 75 s; a call takes ~10-40 s)
# and $START (for the closing "done in N s" line).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PYTHONPATH=.
PY=${PYTHON:-python3}
T="timeout 75"
START=$(date +%s)
