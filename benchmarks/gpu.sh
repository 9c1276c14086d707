#!/usr/bin/env bash
# One prepared GPU run (about 12 minutes on an H100): training throughput of
# resnet9(width=64) through Lightning vs a DataLoader loop and a device-resident tight
# loop, then the wall time and best test accuracy of a 10-evaluation study with
# configs/kmnist.yaml, one trial at a time and then with 2, 3 and 4 trials sharing the
# GPU (search.parallel, engine.gpus_per_trial = 1/q: which finishes soonest at the same
# accuracy); writes benchmarks/results/gpu.json.
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
# Several trials sharing the GPU: the same study with q in flight, a 1/q share each.
: > "$RUN.parallel.tsv"
for q in 2 3 4; do
  share=$("$PY" -c "print(round(1 / $q, 4))")
  qstart=$(date +%s.%N)
  "$PY" -m boresnet bo --config configs/kmnist.yaml --data-dir "$DATA" "${TILE[@]}" \
    --trainer.progress_bar false --search.parallel "$q" --engine.gpus_per_trial "$share" \
    --engine.cpus_per_trial 2 --run-dir "$RUN-q$q"
  qend=$(date +%s.%N)
  printf '%s\t%s\t%s\n' "$q" "$qstart" "$qend" >> "$RUN.parallel.tsv"
done
# benchmarks/results/gpu.json: the fields below, from this one run.
"$PY" - "$RUN" "$start" "$end" <<'PY'
import json, sys
from pathlib import Path
summary = json.load(open(f"{sys.argv[1]}/summary.json"))
parallel = {}
for line in Path(f"{sys.argv[1]}.parallel.tsv").read_text().splitlines():
    q, qstart, qend = line.split("\t")
    s = json.load(open(f"{sys.argv[1]}-q{q}/summary.json"))
    parallel[q] = {
        "study_wall_s": round(float(qend) - float(qstart), 1),
        "study_test_acc": s["test_acc"],
        "study_best_lr": (s["best_params"] or {}).get("lr"),
        "evaluations": s["n_trials"],
    }
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
    "parallel": parallel,
}
Path("benchmarks/results/gpu.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
PY
