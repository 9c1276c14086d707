"""The acquisition: (constrained) log Expected Improvement, and where it is highest.

With a feasibility GP, ``LogConstrainedExpectedImprovement`` weights EI by the
probability that training does not diverge: a divergence says "infeasible here", not
"the loss is bad from here on", so the region just below a divergence cliff (where
SGD's optimum often is) stays attractive. The exploration step uses the same
acquisition on an optimistic, short-sighted copy of the objective GP
(:func:`optimistic_copy`). :func:`maximise` finds the best candidate outside the
neighbourhoods that :mod:`~boresnet.tuner.exclusions` rules out.

While trials run (``pending``), the analytic acquisitions cannot know of them: their
Monte Carlo versions (``qLogExpectedImprovement``, the feasibility GP as a constraint on
the samples) take the running points as ``X_pending`` and value a candidate by what it
adds to them jointly, so the next proposal goes elsewhere unless it is worth it there.
"""

from __future__ import annotations

import copy
import math

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import (
    ConstrainedExpectedImprovement,
    ExpectedImprovement,
    LogConstrainedExpectedImprovement,
    LogExpectedImprovement,
)
from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.acquisition.monte_carlo import qExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective
from botorch.models import ModelListGP, SingleTaskGP
from botorch.optim import optimize_acqf
from botorch.sampling import SobolQMCNormalSampler

from boresnet.tuner.defaults import EXPLORE_LENGTHSCALE
from boresnet.tuner.exclusions import (
    Exclusions,
    SearchExhausted,
    likely_to_train,
    open_to_improvement,
)
from boresnet.tuner.observations import DTYPE
from boresnet.tuner.sampling import ACQUISITION_STREAM, sobol_unit, step_seed
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate

# Salts of the restarts' seeds: which kind of step maximises.
MODEL_STEP, EXPLORATION_STEP = 1, 2
# Quasi-MC samples of the joint posterior (candidate + pending points) while trials run:
# BoTorch's default for its MC acquisitions.
PENDING_SAMPLES = 512


def optimistic_copy(model: SingleTaskGP, dim: int) -> SingleTaskGP:
    """A copy of ``model`` that expects the best value seen wherever it has seen nothing.

    Its prior mean is the lowest modelled value and its length-scale at most
    ``EXPLORE_LENGTHSCALE`` (x sqrt(dim)), with the same fitted noise: unexplored gaps
    then look as good as the best, so a narrow basin on a plateau or a second minimum
    gets a look. A copy, so the model that reports and draws stays the honest one.
    """
    optimistic = copy.deepcopy(model)
    optimistic.train()  # drops the cached prediction strategy
    optimistic.mean_module.initialize(constant=float(optimistic.train_targets.min()))
    kernel = optimistic.covar_module
    kernel.lengthscale = kernel.lengthscale.detach().clamp_max(EXPLORE_LENGTHSCALE * math.sqrt(dim))
    optimistic.eval()
    return optimistic


def minimised(samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
    """The MC objective: the negated objective GP's output (BoTorch maximises)."""
    return -samples[..., 0]


def trains(samples: torch.Tensor) -> torch.Tensor:
    """The MC constraint: feasible (``<= 0``) where the feasibility GP's output is ``>= 0``."""
    return -samples[..., 1]


def acquisition_function(
    surrogate: Surrogate,
    dim: int,
    log: bool,
    optimistic: bool = False,
    pending: torch.Tensor | None = None,
    seed: int = 0,
) -> AcquisitionFunction | None:
    """(Constrained) EI on the surrogate, to be minimised (``None`` before a GP exists).

    With a fidelity, the acquisition of the models' full-length slice: it takes the
    parameters' coordinates (BoTorch's ``FixedFeatureAcquisitionFunction`` adds the
    full length), and ``pending`` points carry their lengths.

    Args:
        surrogate: The fitted models.
        dim: Number of searched parameters.
        log: Log-EI (same maximiser, no underflow) or EI in linear units.
        optimistic: On :func:`optimistic_copy` of the objective GP (exploration).
        pending: Points of trials still running, ``(k, d)`` (``(k, d + 1)`` with a
            fidelity): the Monte Carlo version with them as ``X_pending``. ``None`` or
            empty: the analytic one.
        seed: Seeds the Monte Carlo samples (with ``pending`` only).
    """
    acq = _acquisition(surrogate, log, optimistic, pending, seed)
    fidelity = surrogate.fidelity
    if acq is None or fidelity is None:
        return acq
    return FixedFeatureAcquisitionFunction(
        acq, d=surrogate.space.dim, columns=[dim], values=[fidelity.coord(fidelity.full)]
    )


def _acquisition(
    surrogate: Surrogate, log: bool, optimistic: bool, pending: torch.Tensor | None, seed: int
) -> AcquisitionFunction | None:
    """:func:`acquisition_function` over every input of the models."""
    dim = surrogate.space.dim
    objective = surrogate.objective
    if objective is None:
        return None
    if optimistic:
        objective = optimistic_copy(objective, dim)
    if pending is not None and len(pending):
        feasible = surrogate.feasibility is not None
        mc_cls = qLogExpectedImprovement if log else qExpectedImprovement
        return mc_cls(
            ModelListGP(objective, surrogate.feasibility) if feasible else objective,
            best_f=-surrogate.best_f(),
            sampler=SobolQMCNormalSampler(torch.Size([PENDING_SAMPLES]), seed=seed),
            objective=GenericMCObjective(minimised),
            X_pending=pending.to(DTYPE),
            constraints=[trains] if feasible else None,
        )
    if surrogate.feasibility is not None:
        cls = LogConstrainedExpectedImprovement if log else ConstrainedExpectedImprovement
        return cls(
            ModelListGP(objective, surrogate.feasibility),
            best_f=surrogate.best_f(),
            objective_index=0,
            constraints={1: (0.0, None)},
            maximize=False,
        )
    cls = LogExpectedImprovement if log else ExpectedImprovement
    return cls(objective, best_f=surrogate.best_f(), maximize=False)


def maximise(
    acq: AcquisitionFunction,
    space: SearchSpace,
    exclusions: Exclusions,
    surrogate: Surrogate,
    seed: int,
    salt: int,
    num_restarts: int,
    raw_samples: int,
    edge: bool = False,
    box: torch.Tensor | None = None,
) -> torch.Tensor:
    """The acquisition's best point outside the neighbourhoods of evaluated points.

    Only points the feasibility model thinks more likely to train than to diverge are
    candidates (while any exists): constrained EI alone still sends a large enough EI
    into a likely divergence, just above the cliff where SGD's optimum often lies.

    Args:
        acq: The acquisition.
        space: The search space.
        exclusions: What the observations rule out.
        surrogate: The fitted models (for the probability of divergence).
        seed: The optimiser's seed: the restarts are seeded by it, the number of
            observations and ``salt``, never by the process's random state.
        salt: Which kind of step this is (``MODEL_STEP`` or ``EXPLORATION_STEP``).
        num_restarts: Starting points of the gradient ascent.
        raw_samples: Random points from which those restarts are chosen.
        edge: The exploration step: narrow the candidates to the edge of divergence
            and, with two or more parameters, to those the honest GP cannot rule out
            (:func:`~boresnet.tuner.exclusions.open_to_improvement`).
        box: Where to search, ``(2, d)`` lower and upper corners in search coordinates
            (default, and where every candidate in it is excluded: the whole space).

    Returns:
        The point in search coordinates, ``(d,)``.

    Raises:
        SearchExhausted: Every candidate is excluded.
    """
    bounds = space.bounds(DTYPE) if box is None else box.to(DTYPE)
    X = exclusions.occupied()
    with torch.random.fork_rng():
        torch.manual_seed(step_seed(seed, len(X), ACQUISITION_STREAM, salt))
        found, _ = optimize_acqf(
            acq,
            bounds=bounds,
            q=1,
            num_restarts=num_restarts,
            raw_samples=raw_samples,
            return_best_only=False,
        )
    found = found.detach().reshape(-1, space.dim)
    # Candidates when the gradient ascent ends on an evaluated point: the edges of each
    # neighbourhood along every axis, and a space-filling set.
    radius = exclusions.radius() * 1.01
    steps = torch.cat([torch.diag(radius), -torch.diag(radius)])  # (2d, d)
    edges = (X[:, None, :] + steps[None]).reshape(-1, space.dim)
    fill = bounds[0] + sobol_unit(space.dim, raw_samples, seed + len(X)) * (bounds[1] - bounds[0])
    candidates = torch.cat([found, edges, fill])
    candidates = torch.minimum(torch.maximum(candidates, bounds[0]), bounds[1])
    candidates = candidates[~exclusions.mask(candidates)]
    if not len(candidates) and box is not None:
        return maximise(
            acq, space, exclusions, surrogate, seed, salt, num_restarts, raw_samples, edge
        )
    if not len(candidates):
        raise SearchExhausted(
            f"no point is left outside the excluded neighbourhoods ({len(X)} trials)"
        )
    safe = likely_to_train(surrogate, candidates, edge=edge)
    if safe.any():
        candidates = candidates[safe]
    if edge and space.dim >= 2:
        # The optimistic model's short length-scale leaves every far corner open, and
        # corners multiply with the dimension; the honest GP vetoes those it rules out.
        open_ = open_to_improvement(surrogate, candidates)
        if open_.any():
            candidates = candidates[open_]
    with torch.no_grad():
        values = acq(candidates.unsqueeze(-2))
    return candidates[int(torch.argmax(values))]
