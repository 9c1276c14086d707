"""Figures of a whole study: every iteration at once, convergence, the confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from boresnet.plots.common import COLORS
from boresnet.plots.iteration import draw_iteration
from boresnet.tuner import BayesianOptimizer


def draw_summary(
    states: Sequence[tuple[BayesianOptimizer, dict[str, float] | None]],
    notes: Sequence[str] = (),
) -> Figure:
    """Small multiples: each iteration's posterior and acquisition, from the second on.

    Args:
        states: For each iteration ``k = 2, 3, ...``, the optimiser told the first ``k``
            results and the proposal it made then (``None`` after the last).
        notes: Warnings for the title (drawn in red), e.g. an incumbent at a bound.
    """
    d = states[0][0].space.dim
    cols = min(len(states), 3) if d == 1 else 1
    rows = math.ceil(len(states) / cols)
    fig = plt.figure(figsize=(4.2 * cols * d, 3.3 * rows))
    outer = fig.add_gridspec(rows, cols, hspace=0.45, wspace=0.25)
    for slot, (opt, nxt) in enumerate(states):
        inner = outer[slot // cols, slot % cols].subgridspec(
            2, d, height_ratios=[2.2, 1], hspace=0.05
        )
        axes = [[fig.add_subplot(inner[r, j]) for j in range(d)] for r in range(2)]
        for j in range(d):
            axes[1][j].sharex(axes[0][j])
            axes[0][j].tick_params(labelbottom=False)
        k = len(opt.observations)
        draw_iteration(opt, nxt, axes=axes, title=f"after {k} evaluations", compact=True)
    fig.suptitle(
        "\n".join(["Bayesian optimisation, iteration by iteration", *notes]),
        y=0.995,
        color="#b30000" if notes else "black",
    )
    return fig


def draw_convergence(values: Sequence[float | None], statuses: Sequence[str]) -> Figure:
    """Best objective so far against evaluation number, with every observation."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    n = np.arange(1, len(values) + 1)
    best, running = [], float("inf")
    for v, s in zip(values, statuses, strict=True):
        if s == "ok" and v is not None:
            running = min(running, v)
        best.append(running if np.isfinite(running) else np.nan)
    ok = [
        (i, v)
        for i, (v, s) in enumerate(zip(values, statuses, strict=True), 1)
        if s == "ok" and v is not None
    ]
    if ok:
        ax.scatter(*zip(*ok, strict=True), color=COLORS["obs"], s=25, label="observation")
    failed = [i for i, s in enumerate(statuses, 1) if s != "ok"]
    for i in failed:
        ax.axvline(
            i,
            color=COLORS["fail"],
            alpha=0.3,
            lw=6,
            label="failed / diverged" if i == failed[0] else None,
        )
    ax.step(n, best, where="post", color=COLORS["best"], lw=2.5, label="best so far")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("objective (minimised)")
    ax.set_xticks(n)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Convergence")
    fig.tight_layout()
    return fig


def draw_confusion(matrix: np.ndarray, test_acc: float) -> Figure:
    """Confusion matrix of the best model on the test split (rows: true class)."""
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    im = ax.imshow(matrix, cmap="Blues")
    k = matrix.shape[0]
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                int(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if matrix[i, j] > matrix.max() / 2 else "black",
            )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Test confusion matrix (accuracy {test_acc:.4f})")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
