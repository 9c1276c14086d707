"""Where no proposal may go: next to an evaluated point, above a divergence, into a likely one.

Noise: a point within ``min_distance`` (0.01 decades on a log scale; that fraction of
the range on a linear one) of an evaluated one is never proposed again. SGD's stability
limit is a rate: no proposal lies at a learning rate at or above one that diverged with
the other parameters the same. With ``failures="exclude"``, a neighbourhood of each
failure is excluded too. A pending point (a trial still running) counts as evaluated
for the distance rule: two trials in flight never sit within ``min_distance``. And a
point the feasibility model thinks more likely to diverge than not is no candidate
while another is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from boresnet.tuner.defaults import EDGE_OF_DIVERGENCE, EXCLUDE_RADIUS, LOWER_BOUND_SD
from boresnet.tuner.observations import DTYPE, Observation, coords_of
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate


class SearchExhausted(RuntimeError):
    """No candidate is left outside the excluded neighbourhoods: the range is used up.

    Raised by a proposal when every point of the search space lies within
    ``min_distance`` of an evaluated one (or is ruled out by a divergence): a range too
    narrow for the budget at that resolution.
    """


@dataclass(frozen=True)
class Exclusions:
    """The neighbourhoods that the observations rule out.

    Attributes:
        space: The search space.
        observations: Everything told so far.
        min_distance: Radius around each evaluated point: decades on a log scale, a
            fraction of the range on a linear one.
        failures: The failure mode; ``exclude`` also removes ``EXCLUDE_RADIUS`` around
            each failure.
        pending: Points of trials still running, in search coordinates, ``(k, d)``.
    """

    space: SearchSpace
    observations: Sequence[Observation]
    min_distance: float
    failures: str
    pending: torch.Tensor | None = None

    def occupied(self) -> torch.Tensor:
        """The evaluated points, then the pending ones, in search coordinates, ``(n + k, d)``."""
        X = coords_of(self.space, self.observations)
        return X if self.pending is None else torch.cat([X, self.pending.to(DTYPE)])

    def radius(self) -> torch.Tensor:
        """``min_distance`` per parameter, in search coordinates, ``(d,)``."""
        bounds = self.space.bounds(DTYPE)
        span = bounds[1] - bounds[0]
        log = torch.tensor([p.scale == "log" for p in self.space.params])
        return torch.where(log, torch.ones_like(span), span) * self.min_distance

    def mask(self, candidates: torch.Tensor, above_divergence: bool = True) -> torch.Tensor:
        """Mask of ``(c, d)`` candidates too close to an evaluated or pending point (or a failure).

        With ``above_divergence``, also those above a divergence
        (:meth:`above_a_divergence`).
        """
        mask = torch.zeros(len(candidates), dtype=torch.bool)
        X = self.occupied()
        if not len(X):
            return mask
        dist = (candidates[:, None, :] - X[None, :, :]).abs()  # (c, n + k, d)
        mask |= (dist <= self.radius()).all(-1).any(-1)
        if self.failures == "exclude":
            failed = torch.tensor([not o.ok for o in self.observations])
            if failed.any():
                done = dist[:, : len(self.observations)]
                mask |= (done[:, failed] <= EXCLUDE_RADIUS).all(-1).any(-1)
        if above_divergence:
            mask |= self.above_a_divergence(candidates)
        return mask

    def above_a_divergence(self, candidates: torch.Tensor) -> torch.Tensor:
        """Mask of candidates at a learning rate at or above one that diverged, all else equal.

        Where training diverged, a larger rate with the same other parameters (within
        ``min_distance``) diverges too. The feasibility GP reverts toward "feasible" a
        few length-scales beyond a lone divergence, and log-EI then sent a proposal to
        lr = 10 after a divergence at 4. A divergence at the lowest rate of the range
        (within ``min_distance`` of it) would rule out every rate: the rule steps aside
        for that divergence alone. Only a searched ``lr`` orders rates; without it the
        rule does not apply (the feasibility model still weighs every divergence).
        """
        mask = torch.zeros(len(candidates), dtype=torch.bool)
        j = self.space.rate_column
        if j is None:
            return mask
        others = [k for k in range(self.space.dim) if k != j]
        radius = self.radius()
        lowest = self.space.bounds(DTYPE)[0, j] + radius[j]
        diverged = [o for o in self.observations if o.status == "diverged"]
        for x in coords_of(self.space, diverged):
            if x[j] <= lowest:
                continue  # diverged at the lowest rate: every rate is above it
            same = (candidates[:, others] - x[others]).abs() <= radius[others]
            mask |= (candidates[:, j] >= x[j]) & same.all(-1)
        return mask


def open_to_improvement(surrogate: Surrogate, points: torch.Tensor) -> torch.Tensor:
    """Mask of points the honest GP cannot rule out (all of them where there is no GP).

    Its mean minus ``LOWER_BOUND_SD`` posterior sd lies below the incumbent's value.
    """
    prediction = surrogate.predict(points)
    if prediction is None:
        return torch.ones(len(points), dtype=torch.bool)
    mean, sd = prediction
    return mean - LOWER_BOUND_SD * sd < surrogate.best_f()


def likely_to_train(surrogate: Surrogate, points: torch.Tensor, edge: bool = False) -> torch.Tensor:
    """Mask of points the feasibility model thinks more likely to train than diverge.

    With ``edge``, only those it is unsure of (P(diverge) at least
    ``EDGE_OF_DIVERGENCE``), while any exists: the exploration step's candidates.
    """
    prob = surrogate.failure_probability(points)
    if prob is None:
        return torch.ones(len(points), dtype=torch.bool)
    likely = prob < 0.5
    unsure = likely & (prob >= EDGE_OF_DIVERGENCE)
    return unsure if edge and unsure.any() else likely
