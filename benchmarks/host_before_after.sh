#!/usr/bin/env bash
# The host overhead per step of two commits, by the same command: the AFTER commit's
# `throughput.py --host-only`, run once on the BEFORE commit's package and once on the
# AFTER commit's (each checked out in a temporary git worktree and found first through
# PYTHONPATH). Writes benchmarks/results/host_before.json and host_after.json.
#
# Usage: bash benchmarks/host_before_after.sh [BEFORE] [AFTER]
#   BEFORE: default 4267dc2, the last commit before the training step's rework.
#   AFTER: default e508ec3, the rework measured; its throughput.py must import from
#   BEFORE's package, so both must share a package layout (the package was split into
#   layers after e508ec3: today's overhead is `python benchmarks/throughput.py --host-only`,
#   whose figures above a bare LightningModule are measured in the same run).
#   PYTHON=... picks the interpreter (default .venv/bin/python); DATA_DIR=... the data
#   (default ../shared/data/kmnist-mini).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:-4267dc2}"
AFTER="${2:-e508ec3}"
PY="${PYTHON:-.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, the venv's link kept
DATA="$(cd "${DATA_DIR:-../shared/data/kmnist-mini}" && pwd)"
OUT="$(pwd)/benchmarks/results"
TMP=$(mktemp -d)
trap 'for w in before after; do git worktree remove --force "$TMP/$w" >/dev/null 2>&1 || true; done; rm -rf "$TMP"' EXIT
git worktree add --detach "$TMP/before" "$BEFORE" >/dev/null 2>&1
git worktree add --detach "$TMP/after" "$AFTER" >/dev/null 2>&1
for side in before after; do
  # (from another folder: `python -c` puts the working folder first on the path)
  (cd "$TMP" && PYTHONPATH="$TMP/$side" "$PY" -c "import boresnet, sys; sys.exit(0 if boresnet.__file__.startswith('$TMP/$side/') else 'the $side package is not the one imported')")
  commit=$([ "$side" = before ] && echo "$BEFORE" || echo "$AFTER")
  echo "$side: $commit"
  PYTHONPATH="$TMP/$side" "$PY" "$TMP/after/benchmarks/throughput.py" --host-only \
    --data-dir "$DATA" --out "$OUT/host_$side.json"
done
