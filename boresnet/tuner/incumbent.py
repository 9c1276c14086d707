"""The incumbent (what the study reports) and whether it sits at a bound of the range.

The incumbent is the evaluated success with the lowest GP posterior mean, not the
luckiest single draw: one noisy evaluation does not win.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from boresnet.tuner.defaults import BOUND_MARGIN
from boresnet.tuner.observations import DTYPE, Observation, coords_of
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate


def best_index(
    space: SearchSpace, observations: Sequence[Observation], surrogate: Surrogate
) -> int | None:
    """Position of the incumbent among the observations (``None``: no success yet).

    The evaluated success with the lowest posterior mean (the lowest observed value
    while there is no GP).
    """
    ok = [i for i, o in enumerate(observations) if o.ok]
    if not ok:
        return None
    pred = surrogate.predict(coords_of(space, [observations[i] for i in ok]))
    if pred is None:
        return min(ok, key=lambda i: observations[i].value)
    return ok[int(torch.argmin(pred[0]))]


def incumbent_at_bound(
    space: SearchSpace, incumbent: Observation | None, surrogate: Surrogate
) -> dict[str, str]:
    """Parameters whose incumbent value sits at a bound the posterior still falls toward.

    Returns:
        ``{name: "upper" | "lower"}``: the incumbent is within 0.1 decades (log) or
        a tenth of the range (linear) of that bound, and the posterior mean at the
        bound is no higher than at the incumbent. Empty when nothing is at a bound, and
        without a GP (no posterior to check).
    """
    if incumbent is None:
        return {}
    bounds = space.bounds(DTYPE)
    anchor = space.to_coords(incumbent.params, DTYPE)
    out: dict[str, str] = {}
    for j, p in enumerate(space.params):
        low, high = float(bounds[0, j]), float(bounds[1, j])
        margin = BOUND_MARGIN if p.scale == "log" else BOUND_MARGIN * (high - low)
        for side, edge in (("lower", low), ("upper", high)):
            if abs(float(anchor[j]) - edge) > margin:
                continue
            at_edge = anchor.clone()
            at_edge[j] = edge
            pred = surrogate.predict(torch.stack([anchor, at_edge]))
            if pred is not None and float(pred[0][1]) <= float(pred[0][0]) + 1e-12:
                out[p.name] = side
    return out
