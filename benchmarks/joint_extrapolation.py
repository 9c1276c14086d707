"""What the joint model says of the full length when it knows every short run.

For each measured multi-fidelity table (``fidelity.LENGTH_TABLES``), tell a
``BayesianOptimizer`` with the table's lengths every rate at every length shorter than
the full one (the mean over seeds, divergences as failures), then optionally some full
runs, and print where its posterior mean at full length is lowest and the regret of
that rate. It bounds what short runs alone can find: a full-length optimum that the
short runs do not imply has to be found by full runs.

Usage::

    python benchmarks/joint_extrapolation.py [--full -0.5,-0.25]
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import torch
from fidelity import LENGTH_TABLES, MFLandscape, length_table
from machine import cpu_model

from boresnet.tuner import BayesianOptimizer
from boresnet.tuner.fidelity import Fidelity

# Rates (log10) at which the posterior mean is compared.
GRID = 161


def full_length_optimum(land: MFLandscape, full_runs: list[float]) -> tuple[float, float] | None:
    """The joint model's lowest full-length mean (log10 lr) and its regret on ``land``.

    Args:
        land: A measured table (:func:`fidelity.length_table`).
        full_runs: Rates (log10) also told at full length, each at the table's mean.

    Returns:
        ``(log10 lr, regret)``, or ``None`` where the GP could not be fitted.
    """
    opt = BayesianOptimizer(land.space(), seed=0, fidelity=Fidelity("epochs", land.lengths))
    rates = np.linspace(land.low, land.high, 17)
    told = [(x, s) for s in land.lengths[:-1] for x in rates] + [(x, land.full) for x in full_runs]
    for x, s in told:
        y = land.f(np.array([x]), s)
        opt.tell({"lr": 10 ** float(x), "epochs": s}, y, "diverged" if math.isnan(y) else "ok")
    grid = torch.linspace(land.low, land.high, GRID, dtype=torch.double)[:, None]
    prediction = opt.surrogate().predict(grid)
    if prediction is None:
        return None
    x = float(grid[int(torch.argmin(prediction[0]))])
    return x, land.regret(x)


def main() -> None:
    """Print each table's joint full-length optimum, with and without ``--full`` runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", default="", help="log10 rates also run at full length")
    args = parser.parse_args()
    full = [float(v) for v in args.full.split(",") if v]
    warnings.filterwarnings("ignore")
    print(f"machine: {cpu_model()}")
    for family, path in LENGTH_TABLES.items():
        land = length_table(path, family)
        grid = np.linspace(land.low, land.high, 2001)
        true = float(grid[np.nanargmin([land.f(np.array([x]), land.full) for x in grid])])
        found = full_length_optimum(land, full)
        text = "no GP fit" if found is None else f"10^{found[0]:.2f}, regret {found[1]:.4f}"
        print(f"{family}: full-length optimum 10^{true:.2f}; the joint model's: {text}")


if __name__ == "__main__":
    main()
