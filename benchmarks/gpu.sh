#!/usr/bin/env bash
# One prepared GPU run (about 6 minutes on an H100): training throughput of
# resnet9(width=64) through Lightning vs a DataLoader loop and a device-resident tight
# loop, then the wall time and
# best test accuracy of a 10-evaluation study with configs/kmnist.yaml; writes
# benchmarks/results/gpu.json.
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
# benchmarks/results/gpu.json: the issue's fields, from this one run.
"$PY" - "$RUN" "$start" "$end" <<'PY'
import json, sys
from pathlib import Path
summary = json.load(open(f"{sys.argv[1]}/summary.json"))
speed = json.load(open("benchmarks/results/gpu_throughput.json"))
result = {
    "device": speed["device"],
    "lightning_img_s": speed["lightning_img_s"],
    "tight_loop_img_s": speed["tight_loop_img_s"],
    "ratio_vs_tight": speed["ratio_vs_tight"],
    "study_wall_s": round(float(sys.argv[3]) - float(sys.argv[2]), 1),
    "study_test_acc": summary["test_acc"],
    "study_best_lr": (summary["best_params"] or {}).get("lr"),
    "evaluations": summary["n_trials"],
    "test_n": summary["test_n"],
    "run_dir": sys.argv[1],
}
Path("benchmarks/results/gpu.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
PY
