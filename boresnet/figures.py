"""Matplotlib figures of the study: each BO iteration, a summary, convergence, confusion.

An iteration figure shows what the optimiser believed after ``k`` evaluations: the
observations (failed and diverged ones as red crosses along the bottom edge, where they
were), the GP posterior mean with a 95% band, and below it the acquisition (Expected
Improvement, weighted by the probability of not diverging once a trial has diverged)
with the estimated probability of divergence and the next proposal marked. With several
parameters each column is a 1-D slice through the incumbent; with exactly two, a map of
the whole plane (:mod:`boresnet.maps`) is saved beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only: never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from boresnet.config import Config  # noqa: E402
from boresnet.journal import TrialRecord  # noqa: E402
from boresnet.maps import draw_maps, expected_improvement  # noqa: E402
from boresnet.run_folder import RunFolder  # noqa: E402
from boresnet.tuner import (  # noqa: E402
    DTYPE,
    BayesianOptimizer,
    Pending,
    SearchExhausted,
    is_final_step,
)

GRID = 300
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


def _to_value(space, j: int, coords: np.ndarray) -> np.ndarray:
    return 10.0**coords if space.params[j].scale == "log" else coords


def _slice_grid(opt: BayesianOptimizer, j: int, anchor: torch.Tensor) -> torch.Tensor:
    bounds = opt.space.bounds(DTYPE)
    grid = anchor.repeat(GRID, 1)
    grid[:, j] = torch.linspace(float(bounds[0, j]), float(bounds[1, j]), GRID, dtype=DTYPE)
    return grid


def draw_iteration(
    opt: BayesianOptimizer,
    next_params: dict[str, float] | None,
    axes: Sequence | None = None,
    title: str | None = None,
    compact: bool = False,
    running: Sequence[Pending] = (),
) -> Figure:
    """Draw the optimiser's state: observations, posterior, acquisition, next point.

    Args:
        opt: The optimiser after ``k`` observations (its GP is fitted on demand).
        next_params: The proposal made from this state (``None``: not shown).
        axes: ``(2, d)`` axes to draw into (a new figure if ``None``).
        title: Figure title.
        compact: Small-multiple style (no legends, fewer labels).
        running: Trials still in flight: grey rings on the bottom edge (no value yet).

    Returns:
        The figure.
    """
    space, d = opt.space, opt.space.dim
    if axes is None:
        fig, axes = plt.subplots(
            2,
            d,
            figsize=(6.4 * d if d > 1 else 7.5, 5.6),
            sharex="col",
            squeeze=False,
            gridspec_kw={"height_ratios": [2.2, 1]},
        )
    else:
        fig = axes[0][0].figure
    best = opt.best()
    surrogate = opt.surrogate()
    anchor = space.to_coords(
        best.params if best else space.from_unit(torch.full((d,), 0.5, dtype=DTYPE)), DTYPE
    )
    for j in range(d):
        top, bottom = axes[0][j], axes[1][j]
        grid = _slice_grid(opt, j, anchor)
        x = _to_value(space, j, grid[:, j].numpy())
        band = surrogate.band(grid)
        if band is not None:
            mid, low, high = (t.numpy() for t in band)
            top.fill_between(x, low, high, color=COLORS["band"], alpha=0.5, lw=0, label="95% band")
            top.plot(x, mid, color=COLORS["mean"], lw=2, label="GP mean")
            ei = expected_improvement(opt, grid, running)
            constrained = surrogate.feasibility is not None
            bottom.fill_between(x, 0, ei, color=COLORS["acq"], alpha=0.25, lw=0)
            bottom.plot(
                x,
                ei,
                color=COLORS["acq"],
                lw=1.5,
                label="EI x P(no divergence)" if constrained else "expected improvement",
            )
            fail = surrogate.failure_probability(grid)
            if fail is not None:
                twin = bottom.twinx()
                twin.plot(x, fail.numpy(), color=COLORS["fail"], ls=":", lw=1.5)
                twin.set_ylim(0, 1.05)
                twin.tick_params(labelsize=7, colors=COLORS["fail"])
                if not compact:
                    twin.set_ylabel("P(diverge)", color=COLORS["fail"], fontsize=8)
        else:
            bottom.text(
                0.5,
                0.5,
                "initial design (no GP yet)",
                ha="center",
                va="center",
                transform=bottom.transAxes,
                color="0.4",
            )
        for i, o in enumerate(opt.observations):
            xv = o.params[space.names[j]]
            if o.ok:
                top.scatter(
                    xv,
                    o.value,
                    s=36,
                    color=COLORS["obs"],
                    zorder=4,
                    label="observation" if i == 0 else None,
                )
            else:
                # Where it failed, on the bottom edge: a failure has no objective value.
                top.scatter(
                    xv,
                    0.03,
                    s=60,
                    marker="x",
                    color=COLORS["fail"],
                    zorder=4,
                    clip_on=False,
                    transform=blended_transform_factory(top.transData, top.transAxes),
                    label=f"{o.status} (no value)",
                )
            if not compact and o.ok:
                top.annotate(
                    str(i + 1),
                    (xv, o.value),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                    color="0.3",
                )
        for i, r in enumerate(running):
            top.scatter(
                r.params[space.names[j]],
                0.03,
                s=60,
                marker="o",
                facecolors="none",
                edgecolors=COLORS["running"],
                linewidths=1.5,
                zorder=4,
                clip_on=False,
                transform=blended_transform_factory(top.transData, top.transAxes),
                label="running" if i == 0 else None,
            )
        if best is not None:
            top.scatter(
                best.params[space.names[j]],
                best.value,
                s=220,
                marker="*",
                color=COLORS["best"],
                edgecolor="k",
                zorder=5,
                label="incumbent",
            )
        if next_params is not None:
            xn = next_params[space.names[j]]
            for ax in (top, bottom):
                ax.axvline(xn, color=COLORS["next"], ls="--", lw=1.5)
            bottom.scatter(
                [xn],
                [0],
                marker="^",
                s=90,
                color=COLORS["next"],
                zorder=5,
                clip_on=False,
                label="next proposal",
            )
        if space.params[j].scale == "log":
            top.set_xscale("log")
        # The whole range, always: failures drawn on the edge add no data limits.
        top.set_xlim(space.params[j].low, space.params[j].high)
        if surrogate.transform == "log" and any(o.ok for o in opt.observations):
            # (with no success yet there is nothing to scale; a shifted log models
            # results at or below zero, which a log axis cannot show)
            top.set_yscale("log" if surrogate.shift == 0 else "linear")
        bottom.set_xlabel(
            LABELS.get(space.names[j], space.names[j])
            + (" (slice through incumbent)" if d > 1 else "")
        )
        if j == 0:
            top.set_ylabel("objective" if compact else "objective (minimised)")
            bottom.set_ylabel("acquisition")
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)
        if not compact and j == 0:
            top.legend(fontsize=8, loc="best", framealpha=0.8)
            bottom.legend(fontsize=8, loc="upper left", framealpha=0.8)
    if title:
        if compact:
            axes[0][0].set_title(title, fontsize=9)
        else:
            fig.suptitle(title)
    if not compact:
        fig.tight_layout()
    return fig


def save_iteration_figure(
    config: Config,
    folder: RunFolder,
    records: list[TrialRecord],
    writer=None,
    opt: BayesianOptimizer | None = None,
    running: Sequence[Pending] = (),
) -> None:
    """Draw and save the figure of the iteration after ``len(records)`` evaluations.

    The one function that makes iteration figures: the study after each trial, resume
    for figures a kill skipped, and ``boresnet plot``. The state is rebuilt from the
    journal records alone, so all three draw the same figure.

    Args:
        config: The study's configuration (its budget titles the figure).
        folder: The run folder.
        records: The first ``k`` journal records.
        writer: TensorBoard ``SummaryWriter`` to log the figure to (optional).
        opt: The optimiser already told exactly these records (the study's own), so
            that its fitted models and proposal are reused; rebuilt from them if absent.
        running: The trials in flight (several at once): drawn, and told to the
            proposal as pending, as the study does next.
    """
    k = len(records)
    if opt is None or len(opt.observations) != k:
        opt = BayesianOptimizer.from_config(config, records)
    try:
        if running and k + len(running) >= config.search.budget:
            next_params, kind = None, "in flight"  # the budget's last trials are running
        else:
            next_params, kind = opt.ask(pending=running), opt.last_proposal_kind
    except SearchExhausted:
        next_params, kind = None, "exhausted"
    title = iteration_title(k, config.search.budget, next_params, kind, len(running))
    fig = draw_iteration(opt, next_params, title=title, running=running)
    folder.save(folder.iteration_figure(k), lambda path: fig.savefig(path, dpi=110))
    if writer is not None:
        writer.add_figure("bo/iteration", fig, global_step=k, close=False)
    close(fig)
    if opt.space.dim == 2:
        fig = draw_maps(opt, next_params, running, title=title)
        folder.save(folder.map_figure(k), lambda path: fig.savefig(path, dpi=100))
        if writer is not None:
            writer.add_figure("bo/map", fig, global_step=k, close=False)
        close(fig)
    if writer is not None:
        writer.flush()


def iteration_title(
    iteration: int,
    budget: int,
    next_params: dict[str, float] | None,
    kind: str | None = None,
    running: int = 0,
) -> str:
    """Title of an iteration figure: how many evaluations, what comes next, and why.

    ``kind`` ``explore`` says that the next point is a forced exploration step (at the
    acquisition's best the GP already knows the value, and it gains less than is worth
    a trial; the step maximises EI under an optimistic, short-sighted prior instead),
    so a reader does not look for it at the drawn acquisition's peak. ``gap`` says that
    it is the centre of the largest hole in the data, taken instead of refining the
    incumbent. Before the budget's last evaluation the title says that it refines
    (the optimiser no longer explores there). ``exhausted``: no point is left outside
    ``min_distance`` of the trials, and the study stops early. ``running``: how many
    trials are in flight (several at once); ``in flight``: the budget's last trials are
    running, nothing is proposed.
    """
    done = f"{iteration} evaluations" + (f", {running} running" if running else "")
    if kind == "exhausted":
        return f"Iteration {iteration}: {done}; none next: the range is used up"
    if kind == "in flight":
        return f"Iteration {iteration}: {done}; none next: the rest of the budget is running"
    label = "not evaluated: budget spent" if iteration >= budget else "next"
    nxt = ", ".join(f"{k}={v:.3g}" for k, v in (next_params or {}).items())
    why = {
        "explore": "\n(exploring: the peak would gain too little; an optimistic prior picks next)",
        "gap": "\n(exploring: the peak only refines the best; the largest unexplored hole is next)",
    }
    reason = why.get(kind, "")
    if not reason and iteration + running < budget and is_final_step(iteration + running, budget):
        reason = "\n(the last evaluation: it refines the best, too late to explore)"
    return f"Iteration {iteration}: {done}; {label} {nxt}" + reason


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


def close(fig: Figure) -> None:
    """Release a figure's memory."""
    plt.close(fig)
