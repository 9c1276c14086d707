"""``BayesianOptimizer``: the ask/tell glue between the study and the tuner's parts.

Each ``ask`` builds (or reuses) the :class:`~boresnet.tuner.surrogate.Surrogate` of the
observations so far, asks :mod:`~boresnet.tuner.rules` which kind of step comes next,
and maximises the :mod:`~boresnet.tuner.acquisition` outside what
:mod:`~boresnet.tuner.exclusions` rules out. Objectives are minimised. Trials still
running (``ask(pending=...)``) are ``X_pending`` and count as evaluated; an exploration
or gap step already running is not repeated.

With a :class:`~boresnet.tuner.fidelity.Fidelity` each proposal carries its length and
the budget counts full evaluations' compute: short Sobol design, a point at full length
(a full run's by the full runs' own GP once two trained, near their incumbent), its
length from :mod:`~boresnet.tuner.lengths`, and last the best point not run in full.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction

from boresnet.tuner import acquisition, lengths, rules
from boresnet.tuner.defaults import (
    FIDELITY_DESIGN_PER_PARAM,
    GAP_AFTER_MODEL_STEPS,
    SETTINGS,
    TunerSettings,
    design_size,
)
from boresnet.tuner.exclusions import Exclusions, SearchExhausted
from boresnet.tuner.fidelity import Fidelity
from boresnet.tuner.incumbent import best_index, incumbent_at_bound
from boresnet.tuner.observations import DTYPE, Observation, Pending
from boresnet.tuner.sampling import ACQUISITION_STREAM, step_seed
from boresnet.tuner.space import SearchSpace
from boresnet.tuner.surrogate import Surrogate, check_fidelity_kernel


class BayesianOptimizer:
    """Minimise a black-box function over a :class:`SearchSpace`.

    Every default is :class:`~boresnet.tuner.defaults.TunerSettings`' (where each is
    measured), so the optimiser used directly behaves as ``boresnet bo`` does.

    Args:
        space: What to search.
        n_init: Size of the initial Sobol design (default: 2 per searched parameter).
        seed: Seeds every random choice, so the same observations always give the same
            proposals (:mod:`~boresnet.tuner.sampling`).
        budget: The study's number of evaluations, if known: the last one refines. With
            a ``fidelity``, its compute in full evaluations.
        fidelity: The lengths an evaluation may run for (``None``: every one is full).
        **settings: Any field of :class:`~boresnet.tuner.defaults.TunerSettings`
            (what each does: docs/optimizer.md).

    Raises:
        ValueError: A setting out of its range or list, or (with a fidelity) a kernel
            other than ``matern``.
    """

    def __init__(
        self, space: SearchSpace, n_init: int | None = None, seed: int = 0,
        budget: float | None = None, fidelity: Fidelity | None = None, **settings: Any,
    ) -> None:  # fmt: skip
        if unknown := set(settings) - set(SETTINGS):
            raise TypeError(f"unknown tuner settings: {sorted(unknown)}")
        self.settings = TunerSettings(**settings)
        self.space = space
        self.fidelity = fidelity
        if fidelity is None:
            self.n_init = design_size(space.dim, budget, n_init)
        else:
            check_fidelity_kernel(self.settings.kernel)
            self.n_init = FIDELITY_DESIGN_PER_PARAM * space.dim if n_init is None else n_init
        self.design_given = n_init is not None
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
        self._full_surrogate: tuple[int, Surrogate] | None = None
        self._proposal: tuple[int, dict[str, float], str] | None = None
        self.last_proposal_kind = "sobol"

    def tell(
        self, params: dict[str, float], value: float | None, status: str = "ok"
    ) -> Observation:
        """Record a result (``None`` / NaN: failed or diverged) and return its observation.

        Raises:
            ValueError: With a fidelity, a point without one of its lengths.
        """
        if self.fidelity is not None:
            params = {**params, self.fidelity.name: self.fidelity.of(params)}
        obs = Observation.of(params, value, status)
        self.observations.append(obs)
        return obs

    def surrogate(self) -> Surrogate:
        """The models of the observations so far (fitted once per set of observations)."""
        n = len(self.observations)
        if self._surrogate is None or self._surrogate[0] != n:
            self._surrogate = (n, self._fit(self.observations, self.fidelity))
        return self._surrogate[1]

    def _fit(self, observations: Sequence[Observation], fidelity: Fidelity | None) -> Surrogate:
        return Surrogate(
            self.space, observations, self.transform, self.failures, self.kernel,
            self.feasibility_trend, self.seed, fidelity,
        )  # fmt: skip

    def exclusions(
        self, pending: torch.Tensor | None = None, length: float | None = None
    ) -> Exclusions:
        """The neighbourhoods the observations (and the ``(k, d)`` pending points) rule out.

        With a fidelity, those of the observations (and ``pending``) at ``length`` (full).
        """
        return Exclusions(
            self.space, tuple(self.at_length(length)), self.min_distance, self.failures, pending
        )

    def at_length(self, length: float | None = None) -> list[Observation]:
        """The observations at ``length`` (default: full); all of them without a fidelity."""
        if self.fidelity is None:
            return list(self.observations)
        length = self.fidelity.full if length is None else length
        return [o for o in self.observations if self.fidelity.of(o.params) == length]

    def pending_coords(
        self, pending: Sequence[Pending], length: float | None = None
    ) -> torch.Tensor | None:
        """The pending points, ``(k, d)`` (``None``: none).

        With a fidelity ``(k, d + 1)``, lengths last; with ``length``, those at it, ``(k, d)``.
        """
        if self.fidelity is not None and length is not None:
            pending = [p for p in pending if self.fidelity.of(p.params) == length]
        if not pending:
            return None
        space = self.space
        if self.fidelity is not None and length is None:
            space = self.fidelity.extend(space)
        return torch.stack([space.to_coords(p.params) for p in pending]).to(DTYPE)

    def pending_for(self, models: Surrogate, pending: Sequence[Pending]) -> torch.Tensor | None:
        """The pending points ``models`` take: only those at full length, for the full runs'."""
        full_only = self.fidelity is not None and models.fidelity is None
        return self.pending_coords(pending, self.fidelity.full if full_only else None)

    def spent(self, pending: Sequence[Pending] = ()) -> float:
        """Compute used so far, with the pending trials': evaluations, or full ones' worth."""
        points = [o.params for o in self.observations] + [p.params for p in pending]
        return len(points) if self.fidelity is None else self.fidelity.spent(points)

    def done(self, pending: Sequence[Pending] = ()) -> bool:
        """Whether the budget is spent (never without one; :meth:`Fidelity.exhausted`)."""
        points = [o.params for o in self.observations] + [p.params for p in pending]
        if self.budget is None or self.fidelity is None:
            return self.budget is not None and len(points) >= self.budget
        return self.fidelity.exhausted(points, self.budget)

    def best_index(self) -> int | None:
        """Position of the incumbent (lowest posterior mean) among the observations.

        With a fidelity, among the full-length evaluations, by the mean at full length.
        """
        if self.fidelity is None:
            return best_index(self.space, self.observations, self.surrogate())
        full = self.at_length()
        index = best_index(self.space, full, self.full_surrogate())
        return None if index is None else self.observations.index(full[index])

    def full_surrogate(self) -> Surrogate:
        """The incumbent's models: the full runs' own once :func:`rules.full_runs_rank`."""
        full, joint, space = self.at_length(), self.surrogate(), self.space
        if self.fidelity is None or not rules.full_runs_rank(space, self.observations, full, joint):
            return joint
        if self._full_surrogate is None or self._full_surrogate[0] != len(full):  # (append-only)
            self._full_surrogate = (len(full), self._fit(full, None))
        return self._full_surrogate[1]

    def models_of(self, params: dict[str, float] | None, kind: str | None = None) -> Surrogate:
        """The models that choose a point: :meth:`full_surrogate` for a full-length model step."""
        kind, fid, ranking = kind or self.last_proposal_kind, self.fidelity, self.full_surrogate()
        step = fid is not None and params is not None and kind not in ("sobol", "gap", "finish")
        full = step and fid.of(params) == fid.full and ranking.objective is not None
        return ranking if full else self.surrogate()

    def best(self) -> Observation | None:
        """The incumbent observation (see :meth:`best_index`)."""
        index = self.best_index()
        return None if index is None else self.observations[index]

    def incumbent_at_bound(self) -> dict[str, str]:
        """``{name: "lower" | "upper"}`` for each parameter whose incumbent sits at a bound."""
        return incumbent_at_bound(self.space, self.best(), self.full_surrogate())

    def acquisition_function(
        self,
        log: bool | None = None,
        optimistic: bool = False,
        pending: torch.Tensor | None = None,
        salt: int = acquisition.MODEL_STEP,
        models: Surrogate | None = None,
    ) -> AcquisitionFunction | None:
        """The acquisition on ``models`` (default :meth:`surrogate`; log: as configured).

        With ``(k, d)`` ``pending`` points, the Monte Carlo version that takes them as
        ``X_pending``; its samples are seeded by the step and ``salt``.
        """
        log = self.acquisition == "logei" if log is None else log
        count = len(self.observations) + (0 if pending is None else len(pending))
        return acquisition.acquisition_function(
            models or self.surrogate(), self.space.dim, log, optimistic, pending,
            seed=step_seed(self.seed, count, ACQUISITION_STREAM, salt),
        )  # fmt: skip

    def _maximise(
        self, acq: AcquisitionFunction, salt: int, exclusions: Exclusions, edge: bool = False,
        models: Surrogate | None = None, box: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        return acquisition.maximise(
            acq, self.space, exclusions, models or self.surrogate(), self.seed, salt,
            self.num_restarts, self.raw_samples, edge=edge, box=box,
        )  # fmt: skip

    def exploration_point(self, pending: torch.Tensor | None = None) -> torch.Tensor:
        """The exploration step: the optimistic model's best point at the edge of divergence."""
        step = acquisition.EXPLORATION_STEP
        acq = self.acquisition_function(optimistic=True, pending=pending, salt=step)
        return self._maximise(acq, step, self.exclusions(pending), edge=True)

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
            params, self.last_proposal_kind = self._point(n, pending)
            return params
        if self._proposal is not None and self._proposal[0] == n:
            self.last_proposal_kind = self._proposal[2]
            return dict(self._proposal[1])
        params, self.last_proposal_kind = self._point(n)
        self._proposal = (n, dict(params), self.last_proposal_kind)
        return params

    def _point(self, n: int, pending: Sequence[Pending] = ()) -> tuple[dict[str, float], str]:
        if self.fidelity is None:
            coords, kind = self._propose(n, pending)
            return self.space.from_coords(coords), kind
        coords, length, kind = self._propose_length(n, pending)
        return {**self.space.from_coords(coords), self.fidelity.name: length}, kind

    def _propose_length(
        self, n: int, pending: Sequence[Pending] = ()
    ) -> tuple[torch.Tensor, float, str]:
        """The next point, its length and its kind, with a fidelity.

        The design runs at the shortest length; then the acquisition at full length picks
        the point (or, while it only refines, the gap step the largest hole, at the shortest
        length) and :func:`~boresnet.tuner.lengths.choose_length` its length among those
        that leave a full run's compute; last, the best point not yet run in full runs in full.
        """
        fid = self.fidelity
        surrogate = self.surrogate()
        count = n + len(pending)
        left = (self.budget - self.spent(pending)) if self.budget is not None else math.inf
        final = left < 1 + fid.cost(fid.shortest) - 1e-9
        budget = None if self.design_given else self.budget
        design = lengths.design_runs(fid, budget, self.n_init)
        if not final and (count < design or surrogate.objective is None):
            short = self.exclusions(self.pending_coords(pending, fid.shortest), fid.shortest)
            screen = lengths.shortest_first(fid, budget)  # (blind to feasibility guesses)
            point = rules.design_point(self.space, short, surrogate, self.seed, count, not screen)
            return point, fid.shortest, "sobol"
        at_full = self.exclusions(self.pending_coords(pending, fid.full))
        acq = self.acquisition_function(pending=self.pending_coords(pending))
        coords = None if acq is None else self._maximise(acq, acquisition.MODEL_STEP, at_full)

        def finish() -> tuple[torch.Tensor, float, str]:
            last = lengths.finish_point(self.space, self.observations, surrogate, coords, at_full)
            return last, fid.full, "finish"

        if final or coords is None:  # (no GP yet only when the last full run is due)
            return finish()
        kind = self.acquisition + ("+feasibility" if surrogate.feasibility is not None else "")
        if (
            self.gap_radius is not None
            and "gap" not in {p.kind for p in pending}
            and count >= self.n_init + GAP_AFTER_MODEL_STEPS
            and rules.refining(self.space, self.best(), coords)
        ):
            everything = Exclusions(
                self.space, tuple(self.observations), self.min_distance, self.failures,
                self.pending_coords(pending, None)[:, : self.space.dim] if pending else None,
            )  # fmt: skip
            centre, radius = rules.gap_point(self.space, everything, surrogate, self.seed)
            if radius > self.gap_radius:
                return centre, fid.shortest, "gap"

        def fits(s: float) -> bool:  # leaves a full run's compute; not next to a trial at s
            near = self.exclusions(self.pending_coords(pending, s), s).mask(coords[None])[0]
            return fid.cost(s) + 1 <= left + 1e-9 and not near

        allowed = [s for s in fid.lengths if fits(s)]
        if not allowed:
            return finish()
        length = lengths.choose_length(surrogate, coords, fid, allowed)
        models = self.models_of({fid.name: length}, kind)
        if models is not surrogate:  # a full run: the full runs' models choose its point,
            taken = self.pending_for(models, pending)  # near their incumbent while one is left
            acq = self.acquisition_function(pending=taken, models=models)
            box = rules.trust_region(self.space, self.space.to_coords(self.best().params))
            coords = self._maximise(acq, acquisition.MODEL_STEP, at_full, models=models, box=box)
        return coords, length, kind

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
            centre, radius = rules.gap_point(self.space, exclusions, surrogate, self.seed)
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
        while not self.done():
            try:
                params = self.ask()
            except SearchExhausted as err:
                warnings.warn(
                    f"stopping after {len(self.observations)} evaluations: {err}", stacklevel=2
                )
                break
            self.tell(params, objective(params), "ok")
        return self.best()
