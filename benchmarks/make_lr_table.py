"""Tabulate the real objective: validation loss of the CPU profile on a grid.

Runs the project's own trial code (``configs/cpu.yaml``) at 41 log-spaced learning
rates over the CPU profile's search range, 3 training seeds each, and writes
``benchmarks/data/lr_table.csv`` (one row per trial, appended as it goes, so an
interrupted run continues where it stopped). ``bo_regret.py`` replays this table.

With ``--momenta`` the grid is learning rate x SGD momentum, written to
``benchmarks/data/lr_momentum_table.csv``: the measured 2-D landscape ``bo_regret.py``
replays as the ``lr_momentum_table`` family. Seeds run one after another, so a run
stopped part-way leaves whole seeds' surfaces.

With ``--lengths`` each rate is also trained at shorter lengths (epochs, the whole
schedule compressed into them: ``run_trial(length=...)``), written to
``benchmarks/data/lr_length_table.csv``: the multi-fidelity table of
``bo_regret.py --suite fidelity``. The last line records how long the table took.

Usage::

    python benchmarks/make_lr_table.py [--data-dir ../shared/data/kmnist-mini]
    python benchmarks/make_lr_table.py --points 9 --momenta 0,0.5,0.8,0.9,0.97
    python benchmarks/make_lr_table.py --points 17 --seeds 2 --lengths 0.25,0.5,1,2
    python benchmarks/make_lr_table.py --summary benchmarks/data/lr_momentum_table.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import yaml
from landscapes import Table, table_rows

from boresnet.atomic import write_text
from boresnet.config.schema import from_dict
from boresnet.training.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "data" / "lr_table.csv"
DEFAULT_OUT_2D = ROOT / "benchmarks" / "data" / "lr_momentum_table.csv"
DEFAULT_OUT_LENGTHS = ROOT / "benchmarks" / "data" / "lr_length_table.csv"
FIELDS = ["log10_lr", "lr", "seed", "status", "objective", "val_loss", "val_acc", "wall_s"]


def momenta(text: str) -> list[float]:
    """Parse ``--momenta``: comma-separated values in [0, 1)."""
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or not all(0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"momenta must lie in [0, 1), got {text!r}")
    return values


def lengths(text: str) -> list[float]:
    """Parse ``--lengths``: comma-separated positive epochs."""
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"lengths must be positive epochs, got {text!r}")
    return sorted(values)


def summary(path: Path) -> str:
    """The mean objective over the table's finished seeds, as a Markdown table.

    One row per momentum (one row in a 1-D table), one column per learning rate;
    "div." where a seed diverged.
    """
    table = Table(path)
    momenta = table.axes[1] if len(table.axes) > 1 else [None]
    mean = table.mean if len(table.axes) > 1 else table.mean[:, None]
    head = " | ".join(f"{10**x:.3g}" for x in table.x)
    lines = [
        f"{len(table.curves)} seeds; rows: momentum; columns: learning rate",
        "",
        f"| momentum | {head} |",
        "|---" * (len(table.x) + 1) + "|",
    ]
    for j, m in enumerate(momenta):
        cells = " | ".join("div." if np.isnan(v) else f"{v:.3f}" for v in mean[:, j])
        lines.append(f"| {'-' if m is None else f'{m:g}'} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    """Measure the table (skipping rows already in the CSV)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "cpu.yaml"))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "kmnist-mini"))
    parser.add_argument("--points", type=int, default=41)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--momenta", type=momenta, help="comma-separated SGD momenta: a 2-D lr x momentum grid"
    )
    parser.add_argument(
        "--lengths", type=lengths, help="comma-separated epochs: every rate at each length"
    )
    parser.add_argument("--width", type=int, help="the model's width (default: the config's)")
    parser.add_argument(
        "--out",
        help=f"default {DEFAULT_OUT.name} ({DEFAULT_OUT_2D.name} in 2-D, "
        f"{DEFAULT_OUT_LENGTHS.name} with --lengths)",
    )
    parser.add_argument("--summary", metavar="CSV", help="only print a table's mean objective")
    args = parser.parse_args()
    if args.summary:
        try:
            print(summary(Path(args.summary)))
        except ValueError as err:
            parser.exit(1, f"{err}\n")
        return

    config = from_dict(yaml.safe_load(Path(args.config).read_text()))
    config.data.data_dir = args.data_dir
    config.trainer.progress_bar = False
    if args.width is not None:
        config.model.width = args.width
    if args.momenta is not None and args.lengths is not None:
        parser.error("--momenta and --lengths: one grid at a time")
    (param,) = config.search.params
    grid = np.linspace(np.log10(param.low), np.log10(param.high), args.points)
    # One momentum (the profile's own) unless a 2-D grid is asked for.
    moms = args.momenta or [config.optim.momentum]
    lens = args.lengths or [None]
    fields = FIELDS
    out = Path(args.out or DEFAULT_OUT)
    flag = ""
    if args.momenta is not None:
        fields = ["log10_lr", "momentum", *FIELDS[1:]]
        out = Path(args.out or DEFAULT_OUT_2D)
        flag = " --momenta " + ",".join(f"{m:g}" for m in moms)
    if args.lengths is not None:
        fields = ["log10_lr", "epochs", *FIELDS[1:]]
        out = Path(args.out or DEFAULT_OUT_LENGTHS)
        flag = " --lengths " + ",".join(f"{v:g}" for v in lens)
    if args.width is not None:
        flag += f" --width {args.width}"
    made_by = (
        f"# made by: python benchmarks/make_lr_table.py --points {args.points} "
        f"--seeds {args.seeds}{flag} --config {args.config} --data-dir {args.data_dir}"
    )
    done: set[tuple[str, str, str, int]] = set()
    if out.exists():
        text = out.read_text()
        lines = text.splitlines()
        for row in table_rows(text):
            m = f"{float(row.get('momentum', config.optim.momentum)):.4f}"
            length = row.get("epochs", "")
            done.add((f"{float(row['log10_lr']):.4f}", m, length, int(row["seed"])))
        if lines and lines[0].startswith("# made by:") and lines[0] != made_by:
            # Resumed with more seeds: the header names the command that completes it.
            write_text(out, "\n".join([made_by, *lines[1:]]) + "\n")
    else:
        # The header appears whole or not at all; the rows are appended (a table resumes).
        write_text(
            out,
            f"{made_by}\n"
            f"# machine: {platform.machine()}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}; date: {date.today()}\n"
            f"# objective: {config.search.objective} of {Path(args.config).name} "
            f"(width {config.model.width}, {config.trainer.max_epochs} epochs)\n"
            + ",".join(fields)
            + "\n",
        )
    start = time.perf_counter()
    for seed in range(args.seeds):
        for m, length, x in itertools.product(moms, lens, grid):
            tag = "" if length is None else f"{length:g}"
            if (f"{x:.4f}", f"{m:.4f}", tag, seed) in done:
                continue
            params = {"lr": float(10**x)}
            if args.momenta is not None:
                params["momentum"] = m
            r = run_trial(config, params, seed=seed, length=length)
            coords = [f"{x:.4f}"] + ([] if args.momenta is None else [f"{m:.4f}"])
            coords += [] if length is None else [tag]
            with out.open("a") as f:
                csv.writer(f).writerow(
                    [*coords, f"{10**x:.6g}", seed, r.status, r.objective, r.val_loss]
                    + [r.val_acc, r.wall_s]
                )
            print(
                f"seed {seed} momentum={m:g} epochs={tag or 'full'} lr={10**x:.4g} "
                f"{r.status} objective={r.objective} ({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    elapsed = time.perf_counter() - start
    with out.open("a") as f:
        threads = torch.get_num_threads()
        f.write(f"# this run took {elapsed:.0f} s on {platform.machine()}, {threads} threads\n")
    print(f"took {elapsed:.0f} s")


if __name__ == "__main__":
    main()
