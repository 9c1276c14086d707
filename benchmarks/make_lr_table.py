"""Tabulate the real objective: validation loss of the CPU profile at 41 learning rates.

Runs the project's own trial code (``configs/cpu.yaml``) at 41 log-spaced learning
rates over the CPU profile's search range, 3 training seeds each, and writes
``benchmarks/data/lr_table.csv`` (one row per trial, appended as it goes, so an
interrupted run continues where it stopped). ``bo_regret.py`` replays this table.

Usage::

    python benchmarks/make_lr_table.py [--data-dir ../shared/data/kmnist-mini]
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import yaml

from boresnet.config import from_dict
from boresnet.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "data" / "lr_table.csv"
FIELDS = ["log10_lr", "lr", "seed", "status", "objective", "val_loss", "val_acc", "wall_s"]


def main() -> None:
    """Measure the table (skipping rows already in the CSV)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "cpu.yaml"))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "kmnist-mini"))
    parser.add_argument("--points", type=int, default=41)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()

    config = from_dict(yaml.safe_load(Path(args.config).read_text()))
    config.data.data_dir = args.data_dir
    config.trainer.progress_bar = False
    (param,) = config.search.params
    grid = np.linspace(np.log10(param.low), np.log10(param.high), args.points)
    out = Path(args.out)
    done: set[tuple[str, int]] = set()
    if out.exists():
        rows = [line for line in out.read_text().splitlines() if not line.startswith("#")]
        for row in csv.DictReader(rows):
            done.add((f"{float(row['log10_lr']):.4f}", int(row["seed"])))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as f:
            f.write(
                f"# made by: python benchmarks/make_lr_table.py --config {args.config} "
                f"--data-dir {args.data_dir}\n"
                f"# machine: {platform.machine()}, {torch.get_num_threads()} threads, "
                f"torch {torch.__version__}; date: {date.today()}\n"
                f"# objective: {config.search.objective} of configs/cpu.yaml "
                f"(width {config.model.width}, {config.trainer.max_epochs} epochs)\n"
            )
            f.write(",".join(FIELDS) + "\n")
    start = time.perf_counter()
    for seed in range(args.seeds):
        for x in grid:
            if (f"{x:.4f}", seed) in done:
                continue
            r = run_trial(config, {"lr": float(10**x)}, seed=seed)
            with out.open("a") as f:
                csv.writer(f).writerow(
                    [
                        f"{x:.4f}",
                        f"{10**x:.6g}",
                        seed,
                        r.status,
                        r.objective,
                        r.val_loss,
                        r.val_acc,
                        r.wall_s,
                    ]
                )
            print(
                f"seed {seed} lr={10**x:.4g} {r.status} objective={r.objective} "
                f"({time.perf_counter() - start:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
