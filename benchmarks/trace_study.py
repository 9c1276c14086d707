"""One multi-fidelity study on one instance of ``bo_regret.py --fidelity``, step by step.

Replays ``boresnet_mf`` on the instance the benchmark scores (the same landscape, noise
draws and seed) and prints each evaluation: its kind, point, length and value, and the
feasibility GP's probability of divergence at full length at the low end, the centre and
the high end of the range when the step was chosen. It shows where a draw's regret in
``docs/benchmarks.md`` comes from.

Usage::

    python benchmarks/trace_study.py length_table 4 16   # family, budget, draw
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import torch
from bo_regret import NOISE_TABLE
from fidelity import make, noise_draws, run_boresnet_mf
from landscapes import Table

from boresnet.tuner import BayesianOptimizer


def diverge_at_full(opt: BayesianOptimizer) -> str:
    """P(diverge) at full length at the range's low end, centre and high end, or ``-``."""
    models = opt.surrogate()
    space = opt.space
    ends = space.bounds(torch.float64)
    points = torch.stack([ends[0], ends.mean(0), ends[1]])
    fails = models.failure_probability(points)
    return "-" if fails is None else " ".join(f"{float(p):.2f}" for p in fails)


def point(values: np.ndarray) -> str:
    """Search coordinates (log10 for a log-scale parameter), signed to two decimals."""
    return ",".join(f"{v:+.2f}" for v in np.atleast_1d(values))


def trace(family: str, budget: int, rep: int) -> tuple[list[str], float]:
    """Run the instance and return one line per evaluation, and the regret reported.

    Args:
        family: A family of ``bo_regret.py --fidelity`` (a generated one or a table).
        budget: The compute, in full trainings.
        rep: The draw (instance) number.
    """
    land = make(family, rep, Table(NOISE_TABLE).noise(), {})
    rng = noise_draws(family, rep)
    space = land.space()
    lines = []

    def show(opt: BayesianOptimizer, params: dict[str, float], value: float) -> None:
        shown = "diverged" if math.isnan(value) else f"{value:.4f}"
        lines.append(
            f"{len(opt.observations) + 1:3d} {opt.last_proposal_kind:18s}"
            f" x={point(space.to_coords(params).numpy())} epochs={params['epochs']:g}"
            f" -> {shown}  P(diverge) at full, low/centre/high: {diverge_at_full(opt)}"
        )

    reported = run_boresnet_mf(
        land, budget, rep, lambda x, s: land.sampler(x, s, rng), on_step=show
    )[1]
    regret = land.regret(reported)
    where = "nothing" if reported is None else f"x={point(reported)}"
    lines.append(f"reported {where}: regret {regret:.4f}")
    return lines, regret


def main() -> None:
    """Print the trace of one instance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", help="e.g. length_table, length_table_w8, mf_cliff")
    parser.add_argument("budget", type=int, help="compute, in full trainings")
    parser.add_argument("rep", type=int, help="the draw (instance) number")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as bo_regret.py's workers
    warnings.filterwarnings("ignore")
    lines, _ = trace(args.family, args.budget, args.rep)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
