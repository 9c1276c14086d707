"""What every figure shares: colours, axis labels, user's values, the drawn acquisition.

The plots draw what they are given and return figures; they never build or ask an
optimiser, and never write a file (:mod:`boresnet.study.artefacts` saves them).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from boresnet.tuner import DTYPE, BayesianOptimizer, Pending, SearchSpace

COLORS = {
    "obs": "#1f4e79",
    "mean": "#2a7ab0",
    "band": "#9ecae1",
    "acq": "#e6550d",
    "fail": "#d62728",
    "best": "#f2b600",
    "next": "#31a354",
    "running": "0.5",
}
LABELS = {
    "lr": "learning rate",
    "momentum": "momentum",
    "weight_decay": "weight decay",
    "label_smoothing": "label smoothing",
    "warmup_fraction": "warm-up fraction",
}


def param_values(space: SearchSpace, j: int, coords: np.ndarray) -> np.ndarray:
    """Search coordinates of parameter ``j`` as the user's values (10**x on a log scale)."""
    return 10.0**coords if space.params[j].scale == "log" else coords


def acquisition_values(
    opt: BayesianOptimizer,
    grid: torch.Tensor,
    running: Sequence[Pending] = (),
    next_params: dict[str, float] | None = None,
) -> np.ndarray:
    """The acquisition the proposal maximised, at ``(n, d)`` ``grid``, in linear units.

    Log-EI exponentiated (EI x P(no divergence) once a trial diverged): the same values
    as EI without its underflow to 0. With trials ``running``, the Monte Carlo version
    that knows them: what a point adds to them. On the models that chose
    ``next_params`` (:meth:`BayesianOptimizer.models_of`).
    """
    models = opt.models_of(next_params)
    pending = opt.pending_for(models, running)
    acq = opt.acquisition_function(log=True, pending=pending, models=models)
    if acq is None:
        return np.zeros(len(grid))
    with torch.no_grad():
        return acq(grid.to(DTYPE).unsqueeze(-2)).exp().numpy()


def close(fig: Figure) -> None:
    """Release a figure's memory."""
    plt.close(fig)
