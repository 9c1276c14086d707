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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from boresnet.space import SearchSpace
from boresnet.tuner.exclusions import (
    Exclusions,
    SearchExhausted,
    likely_to_train,
    open_to_improvement,
)
from boresnet.tuner.observations import DTYPE, Observation
from boresnet.tuner.sampling import sobol_unit
from boresnet.tuner.surrogate import Surrogate

# Forced exploration: a proposal the GP expects to improve the incumbent by less than a
# worthwhile gain (its noise estimate; on the log scale at least 3%), at a point whose
# value it already knows to within that gain (posterior sd), is not worth an evaluation
# (on a plateau it chases noise along a drift): the step explores instead.
# 3% rather than 1%: in development runs of benchmarks/bo_regret.py, 2% and 3% lowered
# the plateau family's median regret from 0.0044 to 0.0020 and momentum's from 0.083
# to 0.065 / 0.055; 5% was no better. "Already known" (sd below the gain) rather than
# "within 0.1 decades of an evaluated point": steps of 0.1-0.2 decades along a plateau
# escaped the distance test (40 plateau instances: median 0.0059, 0.0044 with the sd
# test); with the exploration length-scale, keeping the distance test as well raised
# the cliff family's median from 0.0017 to 0.0040.
MIN_RELATIVE_GAIN = 0.03
# The gap step fires only while the model's proposal lies this close to the incumbent
# (a fraction of the range, divided by sqrt(dimensions)): it is refining, not exploring.
# 0.1 is the one radius measured (not tuned). Without the condition (development runs,
# 20 instances): momentum 0.049 -> 0.039 and six_hump_camel 0.32 -> 0.24, but Levy's
# p90 0.008 -> 0.11 and Forrester's median 0.0008 -> 0.0016; the rest equal. Kept.
REFINING_RADIUS = 0.1
# Candidates drawn (scrambled Sobol) to find the largest hole.
GAP_CANDIDATES = 2048
# Model steps before the first gap step: the design alone leaves every range half
# empty. After one (development runs): six_hump_camel 0.32 -> 0.41, plateau 0.0014 ->
# 0.0019; Forrester 0.0008 -> 0.0005, the rest about equal.
GAP_AFTER_MODEL_STEPS = 2
# At the last evaluation of the budget the model's own choice stands: no exploration
# and no gap step. Against exploring to the end (development runs, 20 instances per
# family, the classic functions too): median regret cliff 0.0029 -> 0.0025,
# two_minima 0.0014 -> 0.0011, wide 0.0008 -> 0.0005, Forrester 0.0008 -> 0.0005,
# Levy 0.0014 -> 0.0005, six_hump_camel 0.32 -> 0.26, the rest equal, pooled 0.00065 ->
# 0.00045 at the same p90. The last two evaluations: the plateau's p90 0.41 -> 1.2.
# The last one minimising the posterior mean instead of log-EI: pooled 0.00065. The
# committed benchmark agrees (boresnet_explore_to_end rows: docs/benchmarks.md), and
# the measured table on 200 draws went from 0.58x random search's regret to 0.47x.
FINAL_STEPS_WITHOUT_EXPLORING = 1
# Sobol points looked at per design step for one that no rule excludes.
DESIGN_LOOKAHEAD = 64


def is_final_step(n: int, budget: int | None) -> bool:
    """Whether evaluation ``n`` (0-based) is among the budget's last (or past it): it refines.

    Args:
        n: How many evaluations precede it.
        budget: The study's number of evaluations (``None``: unknown, never final).
    """
    return budget is not None and n >= budget - FINAL_STEPS_WITHOUT_EXPLORING


def design_point(
    space: SearchSpace, exclusions: Exclusions, surrogate: Surrogate, seed: int, index: int
) -> torch.Tensor:
    """Point ``index`` of the scrambled Sobol design, skipping excluded points.

    Returns:
        The first of the ``DESIGN_LOOKAHEAD`` points from ``index`` on that is not
        excluded and is likely to train (while one is; else the first not excluded), in
        search coordinates.

    Raises:
        SearchExhausted: Every one of those points is excluded.
    """
    points = space.unit_to_coords(sobol_unit(space.dim, DESIGN_LOOKAHEAD, seed, skip=index))
    allowed = ~exclusions.mask(points)
    if not allowed.any():
        raise SearchExhausted(
            f"none of {DESIGN_LOOKAHEAD} design points is outside the excluded neighbourhoods"
        )
    preferred = allowed & likely_to_train(surrogate, points)
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
    anchor = space.to_coords(incumbent.params)
    unit = space.coords_to_unit(torch.stack([coords.to(DTYPE), anchor]))
    distance = (unit[0] - unit[1]).norm()
    return float(distance) / math.sqrt(space.dim) <= REFINING_RADIUS


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
