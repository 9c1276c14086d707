"""Which length a multi-fidelity evaluation runs for: the most information per cost.

Once the acquisition has chosen a point at the full length, the evaluation runs at the
length that buys the most knowledge of the full-length value there per unit of
compute: an observation at ``(x, s)`` shrinks the posterior variance at ``(x, full)``
by ``cov(s, full)^2 / (var(s) + noise)``, and that reduction is divided by the length's
cost (the inverse-cost weighting of BoTorch's ``InverseCostWeightedUtility``, and the
fidelity choice of BOCA, Kandasamy et al. 2017). A run that diverges returns no loss,
so each reduction is weighted by the feasibility GP's probability that the run trains
at that length: a short run does not go where short runs have just diverged. A short
run must also buy at least ``MIN_INFORMATION_SHARE`` of what the full one would: where
the short runs already say all they can (the model knows the rate's short-run value),
the point is promoted to a longer run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from boresnet.tuner.defaults import MIN_INFORMATION_SHARE
from boresnet.tuner.exclusions import Exclusions
from boresnet.tuner.fidelity import Fidelity
from boresnet.tuner.observations import DTYPE, Observation, coords_of
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate


def shortest_first(fidelity: Fidelity, budget: float | None) -> bool:
    """Whether ``budget`` leaves room for one full run only (``None``: unknown, never).

    Then the design before that run is a screen of the whole range (Egele et al.'s
    shortest-first): nothing a model step learns could be followed up in full.
    """
    shortest = fidelity.cost(fidelity.shortest)
    return budget is not None and budget < 2 + shortest - 1e-9  # no second full run fits


def design_runs(fidelity: Fidelity, budget: float | None, n_init: int) -> int:
    """How many Sobol runs at the shortest length come before the model.

    ``n_init``; but where the budget leaves room for one full run only, the last,
    nothing a model step learns can be followed up in full: the compute before it all
    goes to the design (Egele et al.'s shortest-first). At 2 full trainings this beat
    model steps on 65 of the 107 instances it changed (docs/decisions/0007).

    Args:
        fidelity: The lengths and their costs.
        budget: The study's compute, in full evaluations (``None``: unknown, or an
            ``n_init`` given explicitly, which always holds).
        n_init: The design's size otherwise.
    """
    if not shortest_first(fidelity, budget):
        return n_init
    return max(n_init, int((budget - 1) / fidelity.cost(fidelity.shortest) + 1e-9))


def variance_reduction(
    surrogate: Surrogate, coords: torch.Tensor, fidelity: Fidelity, lengths: Sequence[float]
) -> torch.Tensor | None:
    """How much one evaluation at each length is expected to shrink the full length's variance.

    The reduction if the run trains, times the feasibility GP's probability that it
    trains at that length (a divergence returns no loss).

    Args:
        surrogate: The fitted models (with ``fidelity``).
        coords: The point, ``(d,)`` parameter coordinates.
        fidelity: The lengths' owner.
        lengths: The lengths to value.

    Returns:
        ``(len(lengths),)`` reductions, in the objective GP's units (``None``: no GP).
    """
    model = surrogate.objective
    if model is None:
        return None
    rows = [*lengths, fidelity.full]
    column = torch.tensor([[fidelity.coord(s)] for s in rows], dtype=DTYPE)
    X = torch.cat([coords.to(DTYPE).expand(len(rows), -1), column], dim=-1)
    with torch.no_grad():
        cov = model.posterior(X).mvn.covariance_matrix
    noise = surrogate.noise_sd() ** 2
    var = torch.diagonal(cov)[:-1]
    reduction = cov[:-1, -1].pow(2) / (var + noise)
    fails = surrogate.failure_probability(X[:-1])
    return reduction if fails is None else reduction * (1 - fails)


def choose_length(
    surrogate: Surrogate, coords: torch.Tensor, fidelity: Fidelity, allowed: Sequence[float]
) -> float:
    """The length of the evaluation at ``coords``: the most information per cost.

    Among the ``allowed`` lengths whose expected reduction of the full-length variance
    (:func:`variance_reduction`, weighted by the chance to train) is at least
    ``MIN_INFORMATION_SHARE`` of a full evaluation's, the one with the largest reduction
    per cost; when none reaches that share, the allowed one with the largest reduction.
    Without a GP, the shortest allowed length.

    Args:
        surrogate: The fitted models.
        coords: The point, ``(d,)`` parameter coordinates.
        fidelity: The lengths' owner.
        allowed: The lengths the point may still be evaluated at (not empty).
    """
    allowed = sorted(allowed)
    reduction = variance_reduction(surrogate, coords, fidelity, [*allowed, fidelity.full])
    if reduction is None:
        return allowed[0]
    gains, at_full = reduction[:-1], float(reduction[-1])
    costs = torch.tensor([fidelity.cost(s) for s in allowed], dtype=DTYPE)
    enough = gains >= MIN_INFORMATION_SHARE * at_full
    if not enough.any():
        return allowed[int(torch.argmax(gains))]
    score = torch.where(enough, gains / costs, torch.full_like(gains, -1.0))
    return allowed[int(torch.argmax(score))]


def finish_point(
    space: SearchSpace,
    observations: Sequence[Observation],
    surrogate: Surrogate,
    coords: torch.Tensor | None,
    at_full: Exclusions,
) -> torch.Tensor:
    """The point to evaluate in full: the lowest full-length mean not yet run in full.

    Among the points evaluated at any length and the acquisition's choice ``coords``,
    those ``at_full`` does not exclude (a point already run in full is). Without a GP
    (too few results), the best result's point; without any, the range's centre.
    """
    ok = sorted((o for o in observations if o.ok), key=lambda o: o.value)
    tried = coords_of(space, ok)
    candidates = tried if coords is None else torch.cat([tried, coords[None].to(DTYPE)])
    candidates = candidates[~at_full.mask(candidates)]
    if not len(candidates):
        return space.bounds(DTYPE).mean(0) if coords is None else coords
    prediction = surrogate.predict(candidates)
    if prediction is None:
        return candidates[0]  # sorted by value: the best result not yet run in full
    return candidates[int(torch.argmin(prediction[0]))]
