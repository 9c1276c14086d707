"""The multi-fidelity profile against the default study and lr_find, on one machine.

For each seed: ``boresnet bo --config configs/cpu-fast.yaml`` and ``--config
configs/cpu.yaml`` (each a subprocess, timed by the wall clock), and what a Lightning
user does instead: ``Tuner.lr_find`` (a range test of 100 steps) and one training at its
suggestion, tested on the same test split. Prints one line per run and the medians, and
writes ``benchmarks/results/side_by_side.json``.

Usage::

    python benchmarks/side_by_side.py [--seeds 0,1,2] [--data-dir ../shared/data/kmnist-mini]
    python benchmarks/side_by_side.py --only lr_find
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from lightning.pytorch.tuner import Tuner
from machine import cpu_model

from boresnet.atomic import write_text
from boresnet.config.schema import from_dict
from boresnet.study.report import test_checkpoint
from boresnet.training.trial import build_datamodule, build_module, build_trainer, run_trial

ROOT = Path(__file__).resolve().parents[1]
PROFILES = {"cpu-fast": "configs/cpu-fast.yaml", "cpu": "configs/cpu.yaml"}
# Lightning's default range test: 100 steps from 1e-8 to 1; here over the profile's range.
RANGE_TEST_STEPS = 100


def run_study(profile: str, seed: int, data_dir: str, out: Path) -> dict:
    """One ``boresnet bo`` study in a subprocess: its wall time and report."""
    run = out / f"{profile}-seed{seed}"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "boresnet", "bo", "--config", PROFILES[profile], "--data-dir",
         data_dir, "--seed", str(seed), "--run-dir", str(run)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary = json.loads((run / "summary.json").read_text())
    return {
        "method": profile,
        "seed": seed,
        "wall_s": round(wall, 1),
        "test_acc": summary["test_acc"],
        "lr": summary["best_params"]["lr"],
        "trials": summary["n_trials"],
    }


def run_lr_find(seed: int, data_dir: str, out: Path) -> dict:
    """``Tuner.lr_find`` on the CPU profile, then one training at its suggestion."""
    config = from_dict(yaml.safe_load((ROOT / PROFILES["cpu"]).read_text()))
    config.data.data_dir = data_dir
    config.trainer.progress_bar = False
    config.seed = seed
    low, high = config.search.params[0].low, config.search.params[0].high
    started = time.perf_counter()
    torch.manual_seed(seed)
    trainer = build_trainer(config)
    finder = Tuner(trainer).lr_find(
        build_module(config),
        datamodule=build_datamodule(config, seed),
        min_lr=low,
        max_lr=high,
        num_training=RANGE_TEST_STEPS,
    )
    lr = float(finder.suggestion())
    checkpoint = out / f"lr_find-seed{seed}.ckpt"
    result = run_trial(config, {"lr": lr}, seed=seed, checkpoint=checkpoint)
    test_acc = test_checkpoint(config, checkpoint)[0] if result.status == "ok" else 0.0
    return {
        "method": "lr_find",
        "seed": seed,
        "wall_s": round(time.perf_counter() - started, 1),
        "test_acc": test_acc,
        "lr": lr,
        "trials": 1,
    }


def main() -> None:
    """Run each method on each seed; print and write the runs and their medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "kmnist-mini"))
    parser.add_argument("--only", choices=["cpu-fast", "cpu", "lr_find"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "side_by_side.json"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [args.only] if args.only else ["cpu-fast", "cpu", "lr_find"]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for method in methods:
                if method == "lr_find":
                    row = run_lr_find(seed, args.data_dir, Path(tmp))
                else:
                    row = run_study(method, seed, args.data_dir, Path(tmp))
                runs.append(row)
                print(json.dumps(row), flush=True)
    medians = {
        m: {
            key: statistics.median(r[key] for r in runs if r["method"] == m)
            for key in ("wall_s", "test_acc", "lr")
        }
        for m in methods
    }
    for m, v in medians.items():
        wall, acc, lr = v["wall_s"], v["test_acc"], v["lr"]
        print(f"{m:>9}: median wall {wall:.0f} s, test_acc {acc:.4f}, lr {lr:.3g}")
    if "cpu-fast" in medians and "cpu" in medians:
        ratio = medians["cpu-fast"]["wall_s"] / medians["cpu"]["wall_s"]
        print(f"cpu-fast / cpu wall time: {ratio:.2f}")
    machine = cpu_model()
    command = "python benchmarks/side_by_side.py " + " ".join(sys.argv[1:])
    data = {"machine": machine, "threads": torch.get_num_threads(), "runs": runs,
            "medians": medians, "command": command}  # fmt: skip
    write_text(args.out, json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
