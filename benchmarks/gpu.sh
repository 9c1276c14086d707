#!/usr/bin/env bash
# One prepared GPU run (about 6 minutes on an H100): training throughput of
# resnet9(width=64) through Lightning vs a plain PyTorch loop, then the wall time and
# best test accuracy of a 10-evaluation study with configs/kmnist.yaml.
#
# Without internet the largest data here is kmnist-mini (8,000 training images): its
# 7,000 non-validation images are tiled to 60,000 so that an epoch has full KMNIST's
# size and cost. Accuracy is then measured on kmnist-mini's 1,000 test images.
#
# Usage: bash benchmarks/gpu.sh [DATA_DIR]     (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-${DATA_DIR:-../shared/data/kmnist-mini}}"
PY="${PYTHON:-python}"
RUN="lightning_logs/gpu-bench-$(date +%Y%m%d-%H%M%S)"
TILE=(--data.val_size 1000 --data.tile_train 60000)

"$PY" - <<'PY'
import torch
print("GPU:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)")
print("torch", torch.__version__, "bf16:", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
PY
echo "data: $DATA (training images tiled to 60,000 per epoch)"

"$PY" benchmarks/throughput.py --config configs/kmnist.yaml --data-dir "$DATA" \
  --tile-train 60000 --reps 3 --out benchmarks/results/gpu_throughput.json

start=$(date +%s.%N)
"$PY" -m boresnet bo --config configs/kmnist.yaml --data-dir "$DATA" "${TILE[@]}" \
  --trainer.progress_bar false --run-dir "$RUN"
end=$(date +%s.%N)
"$PY" - "$RUN" "$start" "$end" <<'PY'
import json, sys
summary = json.load(open(f"{sys.argv[1]}/summary.json"))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"study_wall_s": round(wall, 1), "evaluations": summary["n_trials"],
                  "best_params": summary["best_params"], "test_acc": summary["test_acc"],
                  "test_n": summary["test_n"], "run_dir": sys.argv[1]}))
PY
