"""The acquisition as drawn, and 2-D maps of the posterior and acquisition.

With two searched parameters, slices through the incumbent hide what matters most in
SGD's landscapes: a valley along a combination of the two (the effective learning rate
lr / (1 - momentum)) and a cliff across it. :func:`draw_maps` draws the posterior mean
and the acquisition over the whole plane, with every trial on them: evaluated ones as
dots (failures as red crosses), the incumbent as a star, running ones as grey rings and
the next proposal as a green triangle.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from boresnet.plots.common import COLORS, LABELS, acquisition_values, param_values
from boresnet.tuner import DTYPE, BayesianOptimizer, Pending

# Points per axis of a map: 60 x 60 = 3,600 posterior evaluations, well under a second.
MAP_GRID = 60


def draw_maps(
    opt: BayesianOptimizer,
    next_params: dict[str, float] | None,
    running: Sequence[Pending] = (),
    title: str | None = None,
) -> Figure:
    """Posterior mean and acquisition over a 2-parameter plane, the trials on both.

    Args:
        opt: The optimiser after ``k`` observations, over exactly two parameters.
        next_params: The proposal made from this state (``None``: not shown).
        running: Trials still in flight.
        title: Figure title.

    Raises:
        ValueError: The space does not have two parameters.
    """
    space = opt.space
    if space.dim != 2:
        raise ValueError(f"a 2-D map needs two searched parameters, not {space.dim}")
    bounds = space.bounds(DTYPE)
    axes_coords = [
        torch.linspace(bounds[0, j], bounds[1, j], MAP_GRID, dtype=DTYPE) for j in (0, 1)
    ]
    g0, g1 = torch.meshgrid(*axes_coords, indexing="xy")
    grid = torch.stack([g0.reshape(-1), g1.reshape(-1)], dim=-1)
    X, Y = param_values(space, 0, g0.numpy()), param_values(space, 1, g1.numpy())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 5.2), sharey=True)
    band = opt.models_of(next_params).band(grid)  # the models that chose the proposal
    if band is not None:
        mean = band[0].numpy().reshape(MAP_GRID, MAP_GRID)
        # Losses span decades (0.1 at the optimum, 2.3 at chance): levels spaced evenly
        # in log where every value is positive, so the valley's floor keeps its detail.
        if (mean > 0).all() and mean.max() > mean.min():
            levels, norm = np.geomspace(mean.min(), mean.max(), 21), LogNorm()
        else:
            levels, norm = 20, None
        filled = left.contourf(X, Y, mean, levels=levels, cmap="viridis_r", norm=norm)
        fig.colorbar(filled, ax=left, label="GP mean of the objective", format="%.3g")
        ei = acquisition_values(opt, grid, running, next_params).reshape(MAP_GRID, MAP_GRID)
        filled = right.contourf(X, Y, ei, levels=20, cmap="Oranges")
        fig.colorbar(filled, ax=right, label="acquisition")
    else:
        for ax in (left, right):
            ax.text(0.5, 0.5, "initial design (no GP yet)", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")  # fmt: skip
    best = opt.best()
    names = space.names

    def mark(ax, points: Sequence[dict[str, float]], **style) -> None:
        if points:
            xs, ys = [p[names[0]] for p in points], [p[names[1]] for p in points]
            ax.scatter(xs, ys, **style)

    for ax in (left, right):
        mark(ax, [o.params for o in opt.observations if o.ok],
             s=30, color="white", edgecolors="k", zorder=4, label="trial")  # fmt: skip
        mark(ax, [o.params for o in opt.observations if not o.ok],
             s=50, marker="x", color=COLORS["fail"], zorder=4, label="diverged/failed")  # fmt: skip
        mark(ax, [r.params for r in running], s=60, facecolors="none", edgecolors=COLORS["running"],
             linewidths=1.5, zorder=4, label="running")  # fmt: skip
        mark(ax, [best.params] if best else [], s=220, marker="*", color=COLORS["best"],
             edgecolor="k", zorder=5, label="incumbent")  # fmt: skip
        mark(ax, [next_params] if next_params else [], s=110, marker="^", color=COLORS["next"],
             edgecolor="k", zorder=6, label="next proposal")  # fmt: skip
        for j, set_scale in ((0, ax.set_xscale), (1, ax.set_yscale)):
            if space.params[j].scale == "log":
                set_scale("log")
        ax.set_xlim(space.params[0].low, space.params[0].high)
        ax.set_ylim(space.params[1].low, space.params[1].high)
        ax.set_xlabel(LABELS.get(names[0], names[0]))
    left.set_ylabel(LABELS.get(names[1], names[1]))
    left.set_title("posterior mean", fontsize=10)
    right.set_title("acquisition", fontsize=10)
    left.legend(fontsize=7, loc="best", framealpha=0.8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
