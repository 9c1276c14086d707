"""The iteration figure: what the optimiser believed after ``k`` evaluations, and its title.

An iteration figure shows what the optimiser believed after ``k`` evaluations: the
observations (failed and diverged ones as red crosses along the bottom edge, where they
were), the GP posterior mean with a 95% band, and below it the acquisition (Expected
Improvement, weighted by the probability of not diverging once a trial has diverged)
with the estimated probability of divergence and the next proposal marked. With several
parameters each column is a 1-D slice through the incumbent; with exactly two, a map of
the whole plane (:mod:`boresnet.plots.maps`) is drawn beside it. With a fidelity the
posterior and acquisition are the full length's, and each observation is drawn by its
length: smaller and paler the shorter it ran.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from boresnet.plots.common import COLORS, LABELS, acquisition_values, param_values
from boresnet.tuner import DTYPE, BayesianOptimizer, Pending, is_final_step

# Points along each slice of the posterior and acquisition.
GRID = 300


def _slice_grid(opt: BayesianOptimizer, j: int, anchor: torch.Tensor) -> torch.Tensor:
    bounds = opt.space.bounds(DTYPE)
    grid = anchor.repeat(GRID, 1)
    grid[:, j] = torch.linspace(float(bounds[0, j]), float(bounds[1, j]), GRID, dtype=DTYPE)
    return grid


def _share(opt: BayesianOptimizer, params: dict[str, float]) -> float:
    """A point's length as a share of the full one (1 without a fidelity)."""
    fidelity = opt.fidelity
    return 1.0 if fidelity is None else fidelity.cost(fidelity.of(params))


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
    surrogate = opt.models_of(next_params)  # the models that chose the proposal
    anchor = space.to_coords(
        best.params if best else space.from_unit(torch.full((d,), 0.5, dtype=DTYPE)), DTYPE
    )
    for j in range(d):
        top, bottom = axes[0][j], axes[1][j]
        grid = _slice_grid(opt, j, anchor)
        x = param_values(space, j, grid[:, j].numpy())
        band = surrogate.band(grid)
        if band is not None:
            mid, low, high = (t.numpy() for t in band)
            top.fill_between(x, low, high, color=COLORS["band"], alpha=0.5, lw=0, label="95% band")
            top.plot(x, mid, color=COLORS["mean"], lw=2, label="GP mean")
            ei = acquisition_values(opt, grid, running, next_params)
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
                share = _share(opt, o.params)
                top.scatter(
                    xv,
                    o.value,
                    s=12 + 24 * share**0.5 if opt.fidelity else 36,
                    color=COLORS["obs"],
                    alpha=0.35 + 0.65 * share,
                    zorder=4,
                    label=("observation" + (" (size: length)" if opt.fidelity else ""))
                    if i == 0
                    else None,
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


def iteration_title(
    iteration: int,
    budget: int,
    next_params: dict[str, float] | None,
    kind: str | None = None,
    running: int = 0,
    compute: str | None = None,
    spent: bool | None = None,
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
    running, nothing is proposed. ``compute``: with a fidelity, the compute spent (the
    budget is compute, not evaluations); ``finish`` then says the next evaluation is the
    last full-length one. ``spent``: whether the budget is spent (default: ``iteration``
    evaluations reach ``budget``), so the point drawn is not evaluated.
    """
    done = f"{iteration} evaluations" + (f", {running} running" if running else "")
    if compute is not None:
        done += f" ({compute})"
    if kind == "exhausted":
        return f"Iteration {iteration}: {done}; none next: the range is used up"
    if kind == "in flight":
        return f"Iteration {iteration}: {done}; none next: the rest of the budget is running"
    spent = iteration >= budget if spent is None else spent
    label = "not evaluated: budget spent" if spent else "next"
    nxt = ", ".join(f"{k}={v:.3g}" for k, v in (next_params or {}).items())
    why = {
        "explore": "\n(exploring: the peak would gain too little; an optimistic prior picks next)",
        "gap": "\n(exploring: the peak only refines the best; the largest unexplored hole is next)",
        "finish": "\n(the last full-length evaluation: the best point not yet run in full)",
    }
    reason = why.get(kind, "")
    ahead = iteration + running
    if not reason and compute is None and ahead < budget and is_final_step(ahead, budget):
        reason = "\n(the last evaluation: it refines the best, too late to explore)"
    return f"Iteration {iteration}: {done}; {label} {nxt}" + reason
