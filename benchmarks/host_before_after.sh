#!/usr/bin/env bash
# The host overhead per step of two commits, by the same command:
# `throughput.py --host-only` on an earlier commit's package (checked out in a temporary
# git worktree, found first through PYTHONPATH) and then on this one. Writes
# benchmarks/results/host_before.json and host_after.json.
#
# Usage: bash benchmarks/host_before_after.sh [BEFORE]
#   BEFORE: the commit to compare with (default 4267dc2, the last one before the training
#   step's rework; throughput.py must import from it: a commit of the same package layout). PYTHON=... picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:-4267dc2}"
PY="${PYTHON:-.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, the venv's link kept
TMP=$(mktemp -d)
trap 'git worktree remove --force "$TMP/before" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
git worktree add --detach "$TMP/before" "$BEFORE" >/dev/null 2>&1
# (from another folder: `python -c` puts the working folder, this checkout, first)
(cd "$TMP" && PYTHONPATH="$TMP/before" "$PY" -c "import boresnet, sys; sys.exit(0 if boresnet.__file__.startswith('$TMP/before') else 'the earlier package is not the one imported')")
echo "before: $BEFORE"
PYTHONPATH="$TMP/before" "$PY" benchmarks/throughput.py --host-only \
  --out benchmarks/results/host_before.json
echo "after: $(git rev-parse --short HEAD)"
"$PY" benchmarks/throughput.py --host-only --out benchmarks/results/host_after.json
