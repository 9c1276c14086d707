"""``BayesianOptimizer``: the ask/tell glue between the study and the tuner's parts.

Each ``ask`` builds (or reuses) the :class:`~boresnet.tuner.surrogate.Surrogate` of the
observations so far, asks :mod:`~boresnet.tuner.rules` which kind of step comes next,
and maximises the :mod:`~boresnet.tuner.acquisition` outside what
:mod:`~boresnet.tuner.exclusions` rules out. Objectives are minimised.

While trials run, ``ask(pending=...)`` is told their points and kinds: the acquisition
takes the points as ``X_pending``, the distance rule treats them as evaluated, the
design goes on past them, and an exploration or gap step already running is not
repeated. With nothing pending every proposal is what it was without this argument.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from botorch.acquisition import AcquisitionFunction

from boresnet.tuner import acquisition, rules
from boresnet.tuner.defaults import GAP_AFTER_MODEL_STEPS, SETTINGS, TunerSettings, design_size
from boresnet.tuner.exclusions import Exclusions, SearchExhausted
from boresnet.tuner.incumbent import best_index, incumbent_at_bound
from boresnet.tuner.observations import DTYPE, Observation
from boresnet.tuner.sampling import ACQUISITION_STREAM, step_seed
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate


class Pending(NamedTuple):
    """A proposal whose trial is still running.

    Attributes:
        params: Its point.
        kind: How it was chosen (``sobol``, ``logei``, ``explore``, ``gap``...).
    """

    params: dict[str, float]
    kind: str


class BayesianOptimizer:
    """Minimise a black-box function over a :class:`SearchSpace`.

    Every default is :class:`~boresnet.tuner.defaults.TunerSettings`' (where each is
    measured), so the optimiser used directly behaves as ``boresnet bo`` does.

    Args:
        space: What to search.
        n_init: Size of the initial Sobol design (default: 2 per searched parameter).
        seed: Seeds every random choice, so the same observations always give the same
            proposals (:mod:`~boresnet.tuner.sampling`).
        budget: The study's number of evaluations, if known: the last one refines.
        **settings: Any field of :class:`~boresnet.tuner.defaults.TunerSettings`
            (what each does: docs/optimizer.md).

    Raises:
        ValueError: A setting out of its range or list.
    """

    def __init__(
        self,
        space: SearchSpace,
        n_init: int | None = None,
        seed: int = 0,
        budget: int | None = None,
        **settings: Any,
    ) -> None:
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown tuner settings: {sorted(unknown)}")
        self.settings = TunerSettings(**settings)
        self.space = space
        self.n_init = design_size(space.dim, budget, n_init)
        self.seed = seed
        self.budget = budget
        self.acquisition = self.settings.acquisition
        self.num_restarts = self.settings.num_restarts
        self.raw_samples = self.settings.raw_samples
        self.transform = self.settings.transform
        self.failures = self.settings.failures
        self.kernel = self.settings.kernel
        self.feasibility_trend = self.settings.feasibility_trend
        self.min_distance = self.settings.min_distance
        self.explore_after = self.settings.explore_after
        self.gap_radius = self.settings.gap_radius
        self.observations: list[Observation] = []
        self._surrogate: tuple[int, Surrogate] | None = None
        self._proposal: tuple[int, dict[str, float], str] | None = None
        self.last_proposal_kind = "sobol"

    def tell(
        self, params: dict[str, float], value: float | None, status: str = "ok"
    ) -> Observation:
        """Record a result (``None`` / NaN: failed or diverged) and return its observation."""
        obs = Observation.of(params, value, status)
        self.observations.append(obs)
        return obs

    def surrogate(self) -> Surrogate:
        """The models of the observations so far (fitted once per set of observations)."""
        n = len(self.observations)
        if self._surrogate is None or self._surrogate[0] != n:
            model = Surrogate(
                self.space,
                self.observations,
                self.transform,
                self.failures,
                self.kernel,
                self.feasibility_trend,
                self.seed,
            )
            self._surrogate = (n, model)
        return self._surrogate[1]

    def exclusions(self, pending: torch.Tensor | None = None) -> Exclusions:
        """The neighbourhoods the observations (and the ``(k, d)`` pending points) rule out."""
        return Exclusions(
            self.space, tuple(self.observations), self.min_distance, self.failures, pending
        )

    def pending_coords(self, pending: Sequence[Pending]) -> torch.Tensor | None:
        """The pending points in search coordinates, ``(k, d)`` (``None`` when none)."""
        if not pending:
            return None
        return torch.stack([self.space.to_coords(p.params) for p in pending]).to(DTYPE)

    def best_index(self) -> int | None:
        """Position of the incumbent (lowest posterior mean) among the observations."""
        return best_index(self.space, self.observations, self.surrogate())

    def best(self) -> Observation | None:
        """The incumbent observation (see :meth:`best_index`)."""
        index = self.best_index()
        return None if index is None else self.observations[index]

    def incumbent_at_bound(self) -> dict[str, str]:
        """``{name: "lower" | "upper"}`` for each parameter whose incumbent sits at a bound."""
        return incumbent_at_bound(self.space, self.best(), self.surrogate())

    def acquisition_function(
        self,
        log: bool | None = None,
        optimistic: bool = False,
        pending: torch.Tensor | None = None,
        salt: int = acquisition.MODEL_STEP,
    ) -> AcquisitionFunction | None:
        """The acquisition on the current models (log: default as configured).

        With ``(k, d)`` ``pending`` points, the Monte Carlo version that takes them as
        ``X_pending``; its samples are seeded by the step and ``salt``.
        """
        log = self.acquisition == "logei" if log is None else log
        count = len(self.observations) + (0 if pending is None else len(pending))
        return acquisition.acquisition_function(
            self.surrogate(), self.space.dim, log, optimistic, pending,
            seed=step_seed(self.seed, count, ACQUISITION_STREAM, salt),
        )  # fmt: skip

    def _maximise(
        self, acq: AcquisitionFunction, salt: int, exclusions: Exclusions, edge: bool = False
    ) -> torch.Tensor:
        return acquisition.maximise(
            acq, self.space, exclusions, self.surrogate(), self.seed, salt,
            self.num_restarts, self.raw_samples, edge=edge,
        )  # fmt: skip

    def exploration_point(self, pending: torch.Tensor | None = None) -> torch.Tensor:
        """The exploration step: the optimistic model's best point at the edge of divergence."""
        step = acquisition.EXPLORATION_STEP
        acq = self.acquisition_function(optimistic=True, pending=pending, salt=step)
        return self._maximise(acq, step, self.exclusions(pending), edge=True)

    def gap_point(self, pending: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """The centre of the largest hole in the data the GP cannot rule out, and its radius."""
        exclusions = self.exclusions(pending)
        return rules.gap_point(self.space, exclusions, self.surrogate(), self.seed)

    def ask(self, pending: Sequence[Pending] = ()) -> dict[str, float]:
        """Propose the next point to evaluate (deterministic given the observations).

        The proposal is cached until the next ``tell``: the study draws it into the
        iteration figure and then evaluates it, and must not optimise twice.

        Args:
            pending: The proposals whose trials are still running (several trials in
                flight): the new point goes elsewhere unless it is worth it there.

        Raises:
            SearchExhausted: No point is left outside ``min_distance`` of the trials
                (and the pending points).
        """
        n = len(self.observations)
        if pending:
            coords, self.last_proposal_kind = self._propose(n, pending)
            return self.space.from_coords(coords)
        if self._proposal is not None and self._proposal[0] == n:
            self.last_proposal_kind = self._proposal[2]
            return dict(self._proposal[1])
        coords, self.last_proposal_kind = self._propose(n)
        params = self.space.from_coords(coords)
        self._proposal = (n, dict(params), self.last_proposal_kind)
        return params

    def _propose(self, n: int, pending: Sequence[Pending] = ()) -> tuple[torch.Tensor, str]:
        """The next point in search coordinates, and its kind.

        ``count`` proposals precede it: the evaluated ones and the pending ones.
        """
        surrogate = self.surrogate()
        X_pending = self.pending_coords(pending)
        exclusions = self.exclusions(X_pending)
        count = n + len(pending)
        acq = None if count < self.n_init else self.acquisition_function(pending=X_pending)
        if acq is None:
            point = rules.design_point(self.space, exclusions, surrogate, self.seed, count)
            return point, "sobol"
        coords = self._maximise(acq, acquisition.MODEL_STEP, exclusions)
        kind = self.acquisition + ("+feasibility" if surrogate.feasibility is not None else "")
        if rules.is_final_step(count, self.budget):
            return coords, kind  # too late to follow up a look elsewhere: sharpen the incumbent
        running = {p.kind for p in pending}  # one look elsewhere of each kind at a time
        if "explore" not in running and rules.stagnant(
            self.observations, surrogate, self.explore_after
        ):
            if rules.not_worth_it(surrogate, coords):
                return self.exploration_point(X_pending), "explore"
        if (
            self.gap_radius is not None
            and "gap" not in running
            and count >= self.n_init + GAP_AFTER_MODEL_STEPS
            and rules.refining(self.space, self.best(), coords)
        ):
            centre, radius = self.gap_point(X_pending)
            if radius > self.gap_radius:
                return centre, "gap"
        return coords, kind

    def run(
        self, objective: Callable[[dict[str, float]], float | None], budget: int
    ) -> Observation | None:
        """Evaluate ``objective`` until ``budget`` observations exist; return the incumbent.

        ``budget`` counts earlier evaluations and becomes the optimiser's (its last step
        refines); ``objective`` maps parameters to a value to minimise (``None``/NaN: a
        failure). A range used up before the budget (:class:`SearchExhausted`) ends the
        run early, with a warning.
        """
        if budget != self.budget:
            self._proposal = None  # asked under another budget: its last step may differ
            self.budget = budget
        while len(self.observations) < budget:
            try:
                params = self.ask()
            except SearchExhausted as err:
                warnings.warn(
                    f"stopping after {len(self.observations)} evaluations: {err}", stacklevel=2
                )
                break
            self.tell(params, objective(params), "ok")
        return self.best()
