"""The rules that choose what kind of step comes next: design, exploration, gap, last step.

- The first ``n_init`` proposals are a scrambled Sobol design (:func:`design_point`).
- Exploration: when the best has stalled and the model's choice could only confirm what
  the GP already knows (:func:`stagnant`, :func:`not_worth_it`), the step explores.
- The gap step: while the model only refines its incumbent (:func:`refining`), a large
  hole in the data that the GP cannot rule out gets one evaluation at its centre
  (:func:`gap_point`): a crawl down a slope toward one bound, improving at every step,
  otherwise never looks at the other half of the range.
- Neither happens at the last evaluation of a known budget (:func:`is_final_step`): a
  look elsewhere then can no longer be followed up, while one more point next to the
  incumbent sharpens what is reported.
- With a fidelity, whose model ranks the full runs and picks the next one's point: theirs
  alone once they have been where the short runs point (:func:`full_runs_rank`), within
  a trust region around their incumbent (:func:`trust_region`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from boresnet.tuner.defaults import (
    DESIGN_LOOKAHEAD,
    FINAL_STEPS_WITHOUT_EXPLORING,
    FULL_RANKING_COVER,
    FULL_RANKING_MIN,
    FULL_RUN_TRUST,
    GAP_CANDIDATES,
    MIN_RELATIVE_GAIN,
    REFINING_RADIUS,
)
from boresnet.tuner.exclusions import (
    Exclusions,
    SearchExhausted,
    likely_to_train,
    open_to_improvement,
)
from boresnet.tuner.incumbent import best_index
from boresnet.tuner.observations import DTYPE, Observation, coords_of
from boresnet.tuner.sampling import sobol_unit
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate


def is_final_step(n: int, budget: int | None) -> bool:
    """Whether evaluation ``n`` (0-based) is among the budget's last (or past it): it refines.

    Args:
        n: How many evaluations precede it.
        budget: The study's number of evaluations (``None``: unknown, never final).
    """
    return budget is not None and n >= budget - FINAL_STEPS_WITHOUT_EXPLORING


def design_point(
    space: SearchSpace,
    exclusions: Exclusions,
    surrogate: Surrogate,
    seed: int,
    index: int,
    prefer_training: bool = True,
) -> torch.Tensor:
    """Point ``index`` of the scrambled Sobol design, skipping excluded points.

    Args:
        space: The search space.
        exclusions: What the observations rule out.
        surrogate: The fitted models (for the probability of divergence).
        seed: The optimiser's seed (scrambles the design).
        index: How many proposals precede this one.
        prefer_training: Skip points the feasibility model thinks likely to diverge.
            Off for the shortest-first screen (a multi-fidelity budget with room for
            one full run): it must cover the range, and a GP fitted to one divergence
            and one trained run rules out everything above their midpoint, so its
            eight short runs all fell in the lower part (docs/decisions/0007).

    Returns:
        The first of the ``DESIGN_LOOKAHEAD`` points from ``index`` on that is not
        excluded and (with ``prefer_training``) is likely to train (while one is; else
        the first not excluded), in search coordinates.

    Raises:
        SearchExhausted: Every one of those points is excluded.
    """
    points = space.unit_to_coords(sobol_unit(space.dim, DESIGN_LOOKAHEAD, seed, skip=index))
    allowed = ~exclusions.mask(points)
    if not allowed.any():
        raise SearchExhausted(
            f"none of {DESIGN_LOOKAHEAD} design points is outside the excluded neighbourhoods"
        )
    preferred = allowed & likely_to_train(surrogate, points) if prefer_training else allowed
    keep = preferred if preferred.any() else allowed
    return points[int(torch.nonzero(keep)[0])]


def worthwhile_gain(surrogate: Surrogate) -> float:
    """The smallest improvement worth an evaluation, in modelled units.

    The GP's noise estimate, and on the log scale at least 3% (a difference of 0.03 in
    log(loss)): a GP that believes the data noiseless would otherwise chase drifts of a
    few thousandths across a plateau.
    """
    floor = MIN_RELATIVE_GAIN if surrogate.transform == "log" else 0.0
    return max(surrogate.noise_sd() or 0.0, floor)


def stagnant(
    observations: Sequence[Observation], surrogate: Surrogate, explore_after: int | None
) -> bool:
    """Whether the best result has not improved by a worthwhile gain for ``explore_after``."""
    if explore_after is None:
        return False
    gain = worthwhile_gain(surrogate)
    best, since = math.inf, 0
    for o in observations:
        value = surrogate.modelled(o.value) if o.ok else math.inf
        since = 0 if value < best - gain else since + 1
        best = min(best, value)
    return since >= explore_after


def not_worth_it(surrogate: Surrogate, coords: torch.Tensor) -> bool:
    """Whether an evaluation at ``coords`` could only confirm what the GP knows.

    The GP expects less than :func:`worthwhile_gain` over the incumbent there, and its
    posterior sd there is below that gain too.
    """
    mean, sd = surrogate.predict(coords.unsqueeze(0))
    gain = surrogate.best_f() - float(mean)
    worthwhile = worthwhile_gain(surrogate)
    return gain < worthwhile and float(sd) < worthwhile


def refining(space: SearchSpace, incumbent: Observation | None, coords: torch.Tensor) -> bool:
    """Whether ``coords`` lies within ``REFINING_RADIUS`` of the incumbent."""
    if incumbent is None:
        return False
    return distance(space, space.to_coords(incumbent.params), coords[None]) <= REFINING_RADIUS


def full_runs_rank(
    space: SearchSpace,
    observations: Sequence[Observation],
    full: Sequence[Observation],
    joint: Surrogate,
) -> bool:
    """Whether a GP of the ``full`` runs alone ranks them and picks the next full run's point.

    From ``FULL_RANKING_MIN`` trained full runs on, once one of them lies within
    ``FULL_RANKING_COVER`` of the ``joint`` GP's best point (its lowest full-length mean
    among the successes at any length). The joint GP's full-length slice keeps the short
    runs' optimum, but until a full run has been where the short runs point, a GP of the
    full runs alone knows nothing of the basin they found: on a plateau it sent the full
    runs to the bounds (docs/decisions/0007).
    """
    trained = [o for o in full if o.ok]
    if len(trained) < FULL_RANKING_MIN:
        return False
    index = best_index(space, observations, joint)
    anchor = space.to_coords(observations[index].params)
    return distance(space, anchor, coords_of(space, trained)) <= FULL_RANKING_COVER


def trust_region(
    space: SearchSpace, centre: torch.Tensor, radius: float = FULL_RUN_TRUST
) -> torch.Tensor:
    """The box within ``radius`` (a fraction) of each range around ``centre``, clipped.

    Where the full runs' own GP picks a full run: it knows nothing of the short runs, so
    unbounded it sent full runs to bounds the short runs had ruled out (docs/decisions/0007).

    Returns:
        ``(2, d)`` lower and upper corners, in search coordinates.
    """
    unit = space.coords_to_unit(centre.to(DTYPE))
    return space.unit_to_coords(torch.stack([unit - radius, unit + radius]).clamp(0.0, 1.0))


def distance(space: SearchSpace, anchor: torch.Tensor, coords: torch.Tensor) -> float:
    """How far the nearest of ``(n, d)`` ``coords`` lies from ``anchor``, ``(d,)``.

    In fractions of each range, divided by sqrt(dimensions) (``inf`` for no coords).
    """
    if not len(coords):
        return math.inf
    unit = space.coords_to_unit(torch.cat([anchor[None].to(DTYPE), coords.to(DTYPE)]))
    return float((unit[1:] - unit[0]).norm(dim=1).min()) / math.sqrt(space.dim)


def gap_point(
    space: SearchSpace, exclusions: Exclusions, surrogate: Surrogate, seed: int
) -> tuple[torch.Tensor, float]:
    """The centre of the largest hole in the data, and its radius.

    The radius of a candidate is its distance to the nearest evaluated (or pending) point
    or to the boundary, whichever is nearer (in fractions of each range, divided by
    sqrt(dimensions)): a hole's centre, not a bound, which the optimistic exploration
    step tends to pick once every gap looks alike. Candidates are points the honest GP
    does not rule out (:func:`~boresnet.tuner.exclusions.open_to_improvement`: a hole
    between two known-bad points is not worth a trial), that are likely to train and not
    excluded (next to a trial, above a divergence).

    Returns:
        The point in search coordinates, ``(d,)``, and its radius (0 when no candidate
        is left).
    """
    X = space.coords_to_unit(exclusions.occupied())
    unit = sobol_unit(space.dim, GAP_CANDIDATES, seed + len(X))
    candidates = space.unit_to_coords(unit)
    keep = ~exclusions.mask(candidates) & likely_to_train(surrogate, candidates)
    keep &= open_to_improvement(surrogate, candidates)
    if not keep.any():
        return candidates[0], 0.0
    unit, candidates = unit[keep], candidates[keep]
    to_data = torch.cdist(unit, X).min(dim=1).values
    to_boundary = torch.minimum(unit, 1 - unit).min(dim=1).values
    radius = torch.minimum(to_data, to_boundary) / math.sqrt(space.dim)
    i = int(torch.argmax(radius))
    return candidates[i], float(radius[i])
