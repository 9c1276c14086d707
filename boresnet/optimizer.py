"""Bayesian optimisation with BoTorch: a GP surrogate, (constrained) log-EI, and a report.

:class:`BayesianOptimizer` has an ask/tell interface. The first ``n_init`` proposals
are a scrambled Sobol design; after that each proposal maximises log Expected
Improvement of a ``SingleTaskGP`` with inputs normalised to the unit cube and outcomes
standardised (with ``transform="log"``, of log(objective), shifted where a result is at
or below zero: :meth:`BayesianOptimizer.log_shift`). Objectives are minimised.

How failed and diverged trials enter (``failures``):

- ``feasibility`` (default): the objective GP sees successes only; a second GP models a
  feasibility outcome (+1 ok, -1 failed) and ``LogConstrainedExpectedImprovement``
  weights EI by the probability that training does not diverge; points that model
  thinks more likely to diverge than not are no candidates. A divergence says
  "infeasible here", not "the loss is bad from here on", so the region just below a
  divergence cliff (where SGD's optimum often is) stays attractive.
- ``exclude``: the objective GP sees successes only; a neighbourhood of each failure is
  excluded from the acquisition's candidates.
- ``impute``: failures enter the objective GP at the worst finite value seen (the
  earlier behaviour, kept for comparison).

In every mode, no proposal lies at a learning rate at or above one that diverged with
the other parameters the same: SGD's stability limit is a rate.

Noise: a point within ``min_distance`` (0.01 decades on a log scale) of an evaluated one
is never proposed again: the proposal is the best acquisition value outside those
neighbourhoods. The reported incumbent is the evaluated point with the lowest GP
posterior mean, not the luckiest single draw.

Exploration: when the best has stalled and the acquisition's choice could only confirm
what the GP already knows (less than a worthwhile gain, known to within that gain), the
step maximises the same acquisition on a copy of the GP whose prior mean is the best
value seen and whose length-scale is short (:meth:`BayesianOptimizer.exploration_point`):
unexplored gaps then look as good as the best, so a narrow basin on a plateau or a
second minimum gets a look. And while the model only refines its incumbent, a large hole
in the data that the GP cannot rule out gets one evaluation at its centre
(:meth:`BayesianOptimizer.gap_point`): a crawl down a slope toward one bound, improving
at every step, otherwise never looks at the other half of the range. Neither happens
at the last evaluation of a known budget: a look elsewhere then can no longer be
followed up, while one more point next to the incumbent sharpens what is reported.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from botorch.acquisition.analytic import (
    ConstrainedExpectedImprovement,
    ExpectedImprovement,
    LogConstrainedExpectedImprovement,
    LogExpectedImprovement,
)
from botorch.exceptions import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from botorch.optim import optimize_acqf
from gpytorch.means import LinearMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch.quasirandom import SobolEngine

from boresnet.config import DESIGN_PER_PARAM, Config, SearchConfig
from boresnet.journal import TrialRecord
from boresnet.space import SearchSpace

DTYPE = torch.double
ACQUISITIONS = ("logei", "ei")
FAILURE_MODES = ("feasibility", "exclude", "impute")
KERNELS = ("rbf", "matern")
# Relative spread below which outcomes count as constant: fitting a GP to constant data
# (e.g. one success with failures imputed at its value, a spread of ~1e-17) is noise.
CONSTANT_SPREAD = 1e-9
# Neighbourhood of a failure that "exclude" removes, in search coordinates (decades).
EXCLUDE_RADIUS = 0.1
# Forced exploration: a proposal the GP expects to improve the incumbent by less than a
# worthwhile gain (its noise estimate; on the log scale at least 3%), at a point whose
# value it already knows to within that gain (posterior sd), is not worth an evaluation
# (on a plateau it chases noise along a drift): the step explores instead.
# 3% rather than 1%: in development runs of benchmarks/bo_regret.py, 2% and 3% lowered
# the plateau family's median regret from 0.0044 to 0.0020 and momentum's from 0.083
# to 0.065 / 0.055; 5% was no better. "Already known" (sd below the gain) rather than
# "within 0.1 decades of an evaluated point": steps of 0.1-0.2 decades along a plateau
# escaped the distance test (40 plateau instances: median 0.0059, 0.0044 with the sd
# test); with the exploration length-scale below, keeping the distance test as well
# raised the cliff family's median from 0.0017 to 0.0040.
MIN_RELATIVE_GAIN = 0.03
# The exploration step's model assumes features no wider than this length-scale (in
# the unit cube, times sqrt(dimension) as in BoTorch's dimension-scaled prior): a GP
# fitted to a plateau learns a long length-scale and is then sure a two-decade gap is
# flat, where a narrow basin hides. 0.05: plateau median regret 0.0006 and p90 0.41,
# pooled p90 0.028 (the previous release, with neither this cap nor the sd trigger
# above: 0.0016, 1.80 and 0.062; the sd trigger alone, 40 plateau instances: 0.0044
# and 1.89). At 0.1 the plateau's p90 was 1.95 and the table's median 0.0026 (0.0022),
# while in 2-D it gave momentum a p90 of 0.15 (0.38 at 0.05) for the same median;
# without the sqrt(dimension) factor momentum's median was 0.079, with it 0.052
# (benchmarks/bo_regret.py).
EXPLORE_LENGTHSCALE = 0.05
# Where the log transform meets a value at or below zero (a validation error of 0, or a
# test function that goes negative), it models log(y - shift), the shift putting the
# lowest value this fraction of the observed range above zero (a loss curve's minimum
# sits at about 0.04 of its range: 0.095 over 2.2 on benchmarks/data/lr_table.csv).
# The earlier floor at 1e-6 made every such value the same outlier: median regret on
# forrester 5.18 (its local minimum is 5.04 above the global one), gramacy_lee 0.59,
# six_hump_camel 0.56; shifted 0.0039, 0.34, 0.28 (benchmarks/results/classic). Runs of
# fractions 0.01-0.2 gave the same medians; 0.5 and 1 (nearer no log) were worse on
# six_hump_camel.
LOG_SHIFT_FRACTION = 0.05
# Once something diverged, the exploration step looks only where the feasibility model
# gives divergence some chance (P from this value to 0.5), while any such point is left:
# toward the failures, where SGD's optimum often lies (and, in lr x momentum, the narrow
# valley of effective rate below them), not in far gaps it is sure will train, at rates
# too small to learn. Against exploring every gap alike: momentum median regret 0.052 ->
# 0.049 and p90 0.38 -> 0.16, cliff 0.0017 -> 0.0009, wide 0.0010 -> 0.0008 (development
# runs of benchmarks/bo_regret.py, 20 instances each); from 0.2 instead: wide 0.0011.
EDGE_OF_DIVERGENCE = 0.05
# The gap step fires only while the model's proposal lies this close to the incumbent
# (a fraction of the range, divided by sqrt(dimensions)): it is refining, not exploring.
# 0.1 is the one radius measured (not tuned). Without the condition (development runs,
# 20 instances): momentum 0.049 -> 0.039 and six_hump_camel 0.32 -> 0.24, but Levy's
# p90 0.008 -> 0.11 and Forrester's median 0.0008 -> 0.0016; the rest equal. Kept.
REFINING_RADIUS = 0.1
# A hole's centre is a candidate only where the honest GP's lower bound (mean minus this
# many sd) is below the incumbent: a hole between two known-bad points is not worth a
# trial. Without this bound the momentum family paid for it (2-D median regret 0.071
# instead of 0.049 in development runs); with 1 sd Forrester's p90 stayed at 5.04.
GAP_LOWER_BOUND_SD = 2.0
# Candidates drawn (scrambled Sobol) to find the largest hole.
GAP_CANDIDATES = 2048
# At the last evaluation of the budget the model's own choice stands: no exploration
# and no gap step. Against exploring to the end (development runs, 20 instances per
# family, the classic functions too): median regret cliff 0.0029 -> 0.0025,
# two_minima 0.0014 -> 0.0011, wide 0.0008 -> 0.0005, Forrester 0.0008 -> 0.0005,
# Levy 0.0014 -> 0.0005, six_hump_camel 0.32 -> 0.26, the rest equal, pooled 0.00065 ->
# 0.00045 at the same p90. The last two evaluations: the plateau's p90 0.41 -> 1.2.
# The last one minimising the posterior mean instead of log-EI: pooled 0.00065. The
# committed benchmark agrees (boresnet_explore_to_end rows: README "Benchmarks"), and
# the measured table on 200 draws went from 0.58x random search's regret to 0.47x.
FINAL_STEPS_WITHOUT_EXPLORING = 1


def is_final_step(n: int, budget: int | None) -> bool:
    """Whether evaluation ``n`` (0-based) is among the budget's last (or past it): it refines.

    Args:
        n: How many evaluations precede it.
        budget: The study's number of evaluations (``None``: unknown, never final).
    """
    return budget is not None and n >= budget - FINAL_STEPS_WITHOUT_EXPLORING


# An incumbent this close to a bound (decades, or this fraction of a linear range) is
# "at" the bound.
BOUND_MARGIN = 0.1


@dataclass
class Observation:
    """One evaluated point.

    Attributes:
        params: Parameter values.
        value: Objective (``None`` for failed or diverged trials).
        status: ``ok``, ``diverged`` or ``failed``.
    """

    params: dict[str, float]
    value: float | None
    status: str = "ok"

    @property
    def ok(self) -> bool:
        """Whether the observation has a finite objective."""
        return self.status == "ok" and self.value is not None and math.isfinite(self.value)


class BayesianOptimizer:
    """Minimise a black-box function over a :class:`SearchSpace`.

    Every default is the config's (:class:`~boresnet.config.SearchConfig`, where each is
    measured), so the optimiser used directly behaves as ``boresnet bo`` does.

    Args:
        space: What to search.
        n_init: Size of the initial Sobol design (default: 2 per searched parameter).
        acquisition: ``logei`` (maximise log EI: same maximiser, no underflow) or ``ei``.
        num_restarts: Starting points of the acquisition's gradient ascent.
        raw_samples: Random points from which those restarts are chosen.
        seed: Seeds the design and every acquisition optimisation, so the same
            observations always give the same proposals.
        transform: ``log`` models log(objective) instead of the objective; ``none``
            models it as it is.
        failures: How failed trials inform the search: ``feasibility``, ``exclude`` or
            ``impute`` (see the module docstring).
        kernel: ``matern`` (Matern-5/2) or ``rbf``, both with BoTorch's dimension-scaled
            length-scale prior.
        feasibility_trend: Give the feasibility GP a linear mean, so that beyond a
            divergence it stays pessimistic rather than reverting to its average.
        min_distance: No proposal lies within this many decades (log scale) of an
            evaluated point; on a linear scale, this fraction of the range.
        explore_after: Spend a step exploring (:meth:`exploration_point`) when the
            acquisition's choice could only confirm what the GP knows (it expects less
            than :meth:`worthwhile_gain` there, to within that gain) and the best result
            has not improved by that much for this many evaluations; ``None`` never
            forces exploration.
        gap_radius: While the model's proposal refines the incumbent, evaluate instead
            the centre of the largest hole in the data (:meth:`gap_point`) when its
            radius exceeds this fraction of the range (divided by sqrt(dimensions));
            ``None`` never does.
        budget: The study's number of evaluations, if known: the last ones
            (``FINAL_STEPS_WITHOUT_EXPLORING``) neither explore nor fill a gap.
    """

    def __init__(
        self,
        space: SearchSpace,
        n_init: int | None = None,
        acquisition: str = SearchConfig.acquisition,
        num_restarts: int = SearchConfig.num_restarts,
        raw_samples: int = SearchConfig.raw_samples,
        seed: int = 0,
        transform: str = SearchConfig.transform,
        failures: str = SearchConfig.failures,
        kernel: str = SearchConfig.kernel,
        feasibility_trend: bool = SearchConfig.feasibility_trend,
        min_distance: float = SearchConfig.min_distance,
        explore_after: int | None = SearchConfig.explore_after,
        gap_radius: float | None = SearchConfig.gap_radius,
        budget: int | None = None,
    ) -> None:
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if transform not in ("none", "log"):
            raise ValueError(f"transform must be none or log, got {transform!r}")
        if failures not in FAILURE_MODES:
            raise ValueError(f"failures must be one of {FAILURE_MODES}, got {failures!r}")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.space = space
        self.n_init = DESIGN_PER_PARAM * space.dim if n_init is None else n_init
        self.acquisition = acquisition
        self.num_restarts = num_restarts
        self.raw_samples = raw_samples
        self.seed = seed
        self.transform = transform
        self.failures = failures
        self.kernel = kernel
        self.feasibility_trend = feasibility_trend
        self.min_distance = min_distance
        self.explore_after = explore_after
        self.gap_radius = gap_radius
        self.budget = budget
        self.observations: list[Observation] = []
        self._models: tuple[SingleTaskGP | None, SingleTaskGP | None] = (None, None)
        self._models_n = -1
        self._proposal: tuple[int, dict[str, float], str] | None = None
        self.last_proposal_kind = "sobol"

    @classmethod
    def from_config(cls, config: Config, records: Sequence[TrialRecord] = ()) -> BayesianOptimizer:
        """Build the optimiser a config describes, told every journal record in order.

        Args:
            config: The study's configuration (``search`` and ``seed`` are used).
            records: Journal records to replay, in order.
        """
        s = config.search
        opt = cls(
            SearchSpace(s.params),
            n_init=s.design_size,
            acquisition=s.acquisition,
            num_restarts=s.num_restarts,
            raw_samples=s.raw_samples,
            seed=config.seed,
            transform=s.transform,
            failures=s.failures,
            kernel=s.kernel,
            feasibility_trend=s.feasibility_trend,
            min_distance=s.min_distance,
            explore_after=s.explore_after,
            gap_radius=s.gap_radius,
            budget=s.budget,
        )
        for r in records:
            opt.tell(r.params, r.objective, r.status)
        return opt

    # ---------------------------------------------------------------- data
    def tell(
        self, params: dict[str, float], value: float | None, status: str = "ok"
    ) -> Observation:
        """Record the result of evaluating ``params``.

        Args:
            params: The evaluated point.
            value: Its objective, or ``None`` / NaN if the trial failed or diverged.
            status: ``ok``, ``diverged`` or ``failed``.

        Returns:
            The new observation.
        """
        if value is not None and not math.isfinite(value):
            value, status = None, status if status != "ok" else "diverged"
        if value is None and status == "ok":
            status = "failed"
        obs = Observation(dict(params), value, status)
        self.observations.append(obs)
        return obs

    def imputed_value(self) -> float | None:
        """Where failures are drawn (and, with ``impute``, modelled): the worst finite value."""
        finite = [o.value for o in self.observations if o.ok]
        return max(finite) if finite else None

    def log_shift(self) -> float:
        """What the log transform subtracts before taking the log (0: a plain log).

        0 while every finite result is positive; otherwise the lowest result minus
        ``LOG_SHIFT_FRACTION`` of the results' range (of its magnitude, or 1, where the
        range is 0), so that the log is defined and a zero or negative result is not an
        outlier. It is recomputed from the data, like the outcome standardisation.
        """
        finite = [o.value for o in self.observations if o.ok]
        if self.transform != "log" or not finite or min(finite) > 0:
            return 0.0
        low, spread = min(finite), max(finite) - min(finite)
        return low - LOG_SHIFT_FRACTION * (spread if spread > 0 else max(abs(low), 1.0))

    def _forward(self, y: float, shift: float) -> float:
        return math.log(y - shift) if self.transform == "log" else y

    def _coords(self, o: Observation) -> torch.Tensor:
        return self.space.to_coords(o.params, DTYPE)

    def train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(X, Y)``: what the objective GP is fitted to.

        Search coordinates ``(n, d)`` and (transformed) objectives ``(n, 1)``: the
        successes, plus (with ``impute``) the failures at the worst value.
        """
        fill = self.imputed_value() if self.failures == "impute" else None
        shift = self.log_shift()
        xs, ys = [], []
        for o in self.observations:
            if o.ok or fill is not None:
                xs.append(self._coords(o))
                ys.append(self._forward(o.value if o.ok else fill, shift))
        if not xs:
            return torch.empty(0, self.space.dim, dtype=DTYPE), torch.empty(0, 1, dtype=DTYPE)
        return torch.stack(xs), torch.tensor(ys, dtype=DTYPE).unsqueeze(-1)

    def feasibility_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(X, Y)`` of the feasibility GP: every point, +1 if ok, -1 if not."""
        if not self.observations:
            return torch.empty(0, self.space.dim, dtype=DTYPE), torch.empty(0, 1, dtype=DTYPE)
        X = torch.stack([self._coords(o) for o in self.observations])
        Y = torch.tensor([[1.0 if o.ok else -1.0] for o in self.observations], dtype=DTYPE)
        return X, Y

    # ---------------------------------------------------------------- model
    def _gp(
        self, X: torch.Tensor, Y: torch.Tensor, salt: int, trend: bool = False
    ) -> SingleTaskGP | None:
        spread = float(Y.max() - Y.min()) if len(Y) else 0.0
        if len(X) < 2 or spread <= CONSTANT_SPREAD * max(1.0, float(Y.abs().max())):
            return None  # too little, or constant: a GP would only model rounding
        # Build and fit under one seed: LinearMean draws its initial weights from the
        # global generator, so building outside would make a proposal depend on what
        # the process did before (a resumed study would diverge from an unbroken one).
        with torch.random.fork_rng():
            torch.manual_seed(self.seed * 100_003 + 31 * len(self.observations) + salt)
            model = SingleTaskGP(
                X,
                Y,
                covar_module=get_covar_module_with_dim_scaled_prior(
                    self.space.dim, use_rbf_kernel=self.kernel == "rbf"
                ),
                # A linear trend for feasibility: divergence has a direction (it comes
                # with a larger rate), so beyond a divergence the model stays
                # pessimistic instead of reverting to "feasible" a few length-scales away.
                mean_module=LinearMean(self.space.dim) if trend else None,
                input_transform=Normalize(self.space.dim, bounds=self.space.bounds(DTYPE)),
                outcome_transform=Standardize(1),
            )
            try:
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            except ModelFittingError as err:
                warnings.warn(f"GP fit failed ({err}); falling back to space filling", stacklevel=3)
                return None
        model.eval()
        return model

    def models(self) -> tuple[SingleTaskGP | None, SingleTaskGP | None]:
        """Fit (or return the cached) ``(objective GP, feasibility GP)``; ``None`` where absent.

        The feasibility GP exists with ``failures="feasibility"`` once there is at least
        one success and one failure.
        """
        n = len(self.observations)
        if self._models_n != n:
            objective = self._gp(*self.train_data(), salt=0)
            feasibility = None
            if self.failures == "feasibility":
                feasibility = self._gp(
                    *self.feasibility_data(), salt=1, trend=self.feasibility_trend
                )
            self._models, self._models_n = (objective, feasibility), n
        return self._models

    def fit(self) -> SingleTaskGP | None:
        """The objective GP (``None`` while there are too few distinct results)."""
        return self.models()[0]

    def best_f(self) -> float:
        """What EI improves upon: the lowest posterior mean at an evaluated point.

        Robust to noise: a lucky draw does not set the bar (the observed minimum where
        there is no GP).
        """
        model = self.fit()
        X, Y = self.train_data()
        if model is None:
            return float(Y.min())
        with torch.no_grad():
            return float(model.posterior(X).mean.min())

    def acquisition_function(self, log: bool | None = None, optimistic: bool = False):
        """The acquisition function on the current models (``None`` before a GP exists).

        Args:
            log: Log-EI (default: as configured) or EI in linear units.
            optimistic: Give the objective GP the best value seen as its prior mean and
                a length-scale of at most ``EXPLORE_LENGTHSCALE`` (x sqrt(dimensions)),
                so that in any unmeasured gap it expects the best rather than the
                average (the exploration step's acquisition: see
                :meth:`exploration_point`).
        """
        objective, feasibility = self.models()
        if objective is None:
            return None
        if optimistic:
            # Same fitted noise; the prior mean moved and the length-scale capped, on a
            # copy, so the model that reports and draws stays the honest one.
            objective = copy.deepcopy(objective)
            objective.train()  # drops the cached prediction strategy
            objective.mean_module.initialize(constant=float(objective.train_targets.min()))
            kernel = objective.covar_module
            cap = EXPLORE_LENGTHSCALE * math.sqrt(self.space.dim)
            kernel.lengthscale = kernel.lengthscale.detach().clamp_max(cap)
            objective.eval()
        use_log = self.acquisition == "logei" if log is None else log
        if feasibility is not None:
            cls = LogConstrainedExpectedImprovement if use_log else ConstrainedExpectedImprovement
            return cls(
                ModelListGP(objective, feasibility),
                best_f=self.best_f(),
                objective_index=0,
                constraints={1: (0.0, None)},
                maximize=False,
            )
        cls = LogExpectedImprovement if use_log else ExpectedImprovement
        return cls(objective, best_f=self.best_f(), maximize=False)

    def predict(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """GP posterior mean and standard deviation of the modelled target at coords."""
        model = self.fit()
        if model is None:
            return None
        with torch.no_grad():
            post = model.posterior(coords.to(DTYPE))
        return post.mean.squeeze(-1), post.variance.clamp_min(0).sqrt().squeeze(-1)

    def band(self, coords: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Posterior centre and 95% band ``(mid, low, high)`` in objective units.

        Gaussian in the modelled space, so with the log transform the band is
        ``shift + exp(mean +- 1.96 sd)`` (:meth:`log_shift`): exact quantiles, asymmetric
        in objective units.
        """
        pred = self.predict(coords)
        if pred is None:
            return None
        mean, std = pred
        mid, low, high = mean, mean - 1.96 * std, mean + 1.96 * std
        if self.transform == "log":
            shift = self.log_shift()
            return mid.exp() + shift, low.exp() + shift, high.exp() + shift
        return mid, low, high

    def failure_probability(self, coords: torch.Tensor) -> torch.Tensor | None:
        """Estimated probability that training fails at coords (``None``: no model)."""
        feasibility = self.models()[1]
        if feasibility is None:
            return None
        with torch.no_grad():
            post = feasibility.posterior(coords.to(DTYPE))
        mean, sd = post.mean.squeeze(-1), post.variance.clamp_min(1e-12).sqrt().squeeze(-1)
        return torch.distributions.Normal(0.0, 1.0).cdf(-mean / sd)

    def expected_improvement(self, coords: torch.Tensor) -> torch.Tensor | None:
        """The acquisition at ``(n, d)`` coords in linear units (EI x P(feasible)), to plot."""
        acq = self.acquisition_function(log=True)
        if acq is None:
            return None
        with torch.no_grad():
            return acq(coords.to(DTYPE).unsqueeze(-2)).exp()

    # ---------------------------------------------------------------- incumbent
    def best_index(self) -> int | None:
        """Position of the incumbent among the observations.

        The evaluated success with the lowest GP posterior mean (the lowest observed
        value while there is no GP): one noisy lucky draw does not win.
        """
        ok = [i for i, o in enumerate(self.observations) if o.ok]
        if not ok:
            return None
        pred = self.predict(torch.stack([self._coords(self.observations[i]) for i in ok]))
        if pred is None:
            return min(ok, key=lambda i: self.observations[i].value)
        return ok[int(torch.argmin(pred[0]))]

    def best(self) -> Observation | None:
        """The incumbent observation (see :meth:`best_index`)."""
        index = self.best_index()
        return None if index is None else self.observations[index]

    def incumbent_at_bound(self) -> dict[str, str]:
        """Parameters whose incumbent value sits at a bound the posterior still falls toward.

        Returns:
            ``{name: "upper" | "lower"}``: the incumbent is within 0.1 decades (log) or
            a tenth of the range (linear) of that bound, and the posterior mean at the
            bound is no higher than at the incumbent. Empty when nothing is at a bound.
        """
        best = self.best()
        if best is None:
            return {}
        bounds = self.space.bounds(DTYPE)
        anchor = self._coords(best)
        out: dict[str, str] = {}
        for j, p in enumerate(self.space.params):
            low, high = float(bounds[0, j]), float(bounds[1, j])
            margin = BOUND_MARGIN if p.scale == "log" else BOUND_MARGIN * (high - low)
            for side, edge in (("lower", low), ("upper", high)):
                if abs(float(anchor[j]) - edge) > margin:
                    continue
                at_edge = anchor.clone()
                at_edge[j] = edge
                pred = self.predict(torch.stack([anchor, at_edge]))
                if pred is None or float(pred[0][1]) <= float(pred[0][0]) + 1e-12:
                    out[p.name] = side
        return out

    # ---------------------------------------------------------------- ask
    def _radius(self) -> torch.Tensor:
        bounds = self.space.bounds(DTYPE)
        span = bounds[1] - bounds[0]
        log = torch.tensor([p.scale == "log" for p in self.space.params])
        # Decades on a log scale; the same fraction of the range on a linear one.
        return torch.where(log, torch.ones_like(span), span) * self.min_distance

    def _excluded(self, candidates: torch.Tensor, above_divergence: bool = True) -> torch.Tensor:
        """Mask of candidates too close to an evaluated point (or, with exclude, a failure).

        With ``above_divergence``, also those above a divergence (:meth:`_above_a_divergence`).
        """
        mask = torch.zeros(len(candidates), dtype=torch.bool)
        if not self.observations:
            return mask
        X = torch.stack([self._coords(o) for o in self.observations])
        dist = (candidates[:, None, :] - X[None, :, :]).abs()  # (c, n, d)
        mask |= (dist <= self._radius()).all(-1).any(-1)
        if self.failures == "exclude":
            failed = torch.tensor([not o.ok for o in self.observations])
            if failed.any():
                mask |= (dist[:, failed] <= EXCLUDE_RADIUS).all(-1).any(-1)
        if above_divergence:
            mask |= self._above_a_divergence(candidates, X)
        return mask

    def _above_a_divergence(self, candidates: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Mask of candidates at a learning rate at or above one that diverged, all else equal.

        SGD's stability limit is a learning rate: where training diverged, a larger rate
        with the same other parameters (within ``min_distance``) diverges too. The
        feasibility GP reverts toward "feasible" a few length-scales beyond a lone
        divergence, and log-EI then sent a proposal to lr = 10 after a divergence at 4.
        """
        mask = torch.zeros(len(candidates), dtype=torch.bool)
        diverged = torch.tensor([o.status == "diverged" for o in self.observations])
        if "lr" not in self.space.names or not diverged.any():
            return mask
        j = self.space.names.index("lr")
        others = [k for k in range(self.space.dim) if k != j]
        radius = self._radius()[others]
        for x in X[diverged]:
            same = (candidates[:, others] - x[others]).abs() <= radius
            mask |= (candidates[:, j] >= x[j]) & same.all(-1)
        return mask

    def _likely_to_train(self, points: torch.Tensor, edge: bool = False) -> torch.Tensor:
        """Mask of points the feasibility model thinks more likely to train than diverge.

        With ``edge``, only those it is unsure of (P(diverge) at least
        ``EDGE_OF_DIVERGENCE``), while any exists: the exploration step's candidates.
        """
        prob = self.failure_probability(points)
        if prob is None:
            return torch.ones(len(points), dtype=torch.bool)
        likely = prob < 0.5
        unsure = likely & (prob >= EDGE_OF_DIVERGENCE)
        return unsure if edge and unsure.any() else likely

    def _sobol(self, index: int) -> dict[str, float]:
        """Point ``index`` of the scrambled Sobol sequence, skipping excluded points."""
        engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed)
        points = self.space.unit_to_coords(engine.draw(index + 64, dtype=DTYPE)[index:])
        keep = ~self._excluded(points) & self._likely_to_train(points)
        chosen = points[int(torch.nonzero(keep)[0])] if keep.any() else points[0]
        return self.space.from_coords(chosen)

    def _maximise(self, acq, salt: int, edge: bool = False) -> torch.Tensor:
        """The acquisition's best point outside the neighbourhoods of evaluated points.

        Only points the feasibility model thinks more likely to train than to diverge
        are candidates (while any exists): constrained EI alone still sent a large
        enough EI into a likely divergence (cliff family median regret 0.0026 without
        this filter, 0.0017 with it, in development runs of ``benchmarks/bo_regret.py``).
        The restarts are seeded by the optimiser's seed, the number of observations and
        ``salt`` (which step this is), never by the process's random state. ``edge``
        narrows the candidates to the edge of divergence (:meth:`_likely_to_train`).
        """
        bounds = self.space.bounds(DTYPE)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed * 100_003 + 7919 * len(self.observations) + salt)
            found, _ = optimize_acqf(
                acq,
                bounds=bounds,
                q=1,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                return_best_only=False,
            )
        found = found.detach().reshape(-1, self.space.dim)
        # Candidates when the gradient ascent ends on an evaluated point: the edges of
        # each neighbourhood along every axis, and a space-filling set.
        X = torch.stack([self._coords(o) for o in self.observations])
        radius = self._radius() * 1.01
        steps = torch.cat([torch.diag(radius), -torch.diag(radius)])  # (2d, d)
        edges = (X[:, None, :] + steps[None]).reshape(-1, self.space.dim)
        engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed + len(X))
        fill = self.space.unit_to_coords(engine.draw(self.raw_samples, dtype=DTYPE))
        candidates = torch.cat([found, edges, fill])
        candidates = torch.minimum(torch.maximum(candidates, bounds[0]), bounds[1])
        keep = ~self._excluded(candidates)
        if not keep.any():  # training diverged at the lowest rate: nothing is left to try
            keep = ~self._excluded(candidates, above_divergence=False)
        candidates = candidates[keep]
        safe = self._likely_to_train(candidates, edge=edge)
        if safe.any():
            candidates = candidates[safe]
        with torch.no_grad():
            values = acq(candidates.unsqueeze(-2))
        return candidates[int(torch.argmax(values))]

    def noise_sd(self) -> float | None:
        """The objective GP's estimate of the evaluation noise, in modelled units."""
        model = self.fit()
        if model is None:
            return None
        noise = model.likelihood.noise.detach().mean() * model.outcome_transform.stdvs.pow(2)
        return float(noise.sqrt().squeeze())

    def _not_worth_it(self, coords: torch.Tensor) -> bool:
        """Whether an evaluation at ``coords`` could only confirm what the GP knows.

        The GP expects less than :meth:`worthwhile_gain` over the incumbent there, and
        its posterior sd there is below that gain too.
        """
        mean, sd = self.predict(coords.unsqueeze(0))
        gain = self.best_f() - float(mean)
        worthwhile = self.worthwhile_gain()
        return gain < worthwhile and float(sd) < worthwhile

    def worthwhile_gain(self) -> float:
        """The smallest improvement worth an evaluation, in modelled units.

        The GP's noise estimate, and on the log scale at least 3% (a difference of 0.03
        in log(loss)): a GP that believes the data noiseless would otherwise chase
        drifts of a few thousandths across a plateau.
        """
        floor = MIN_RELATIVE_GAIN if self.transform == "log" else 0.0
        return max(self.noise_sd() or 0.0, floor)

    def _stagnant(self) -> bool:
        """Whether the best result has not improved by a worthwhile gain lately."""
        if self.explore_after is None:
            return False
        noise = self.worthwhile_gain()
        shift = self.log_shift()
        best, since = math.inf, 0
        for o in self.observations:
            value = self._forward(o.value, shift) if o.ok else math.inf
            if value < best - noise:
                since = 0
            else:
                since += 1
            best = min(best, value)
        return since >= self.explore_after

    def exploration_point(self) -> torch.Tensor:
        """The exploration step: constrained log-EI under an optimistic, short-sighted model.

        Where the GP has seen nothing it expects the best value seen so far, not the
        average, and it assumes features no wider than ``EXPLORE_LENGTHSCALE``: EI goes
        to the unexplored gaps that could still hold a better basin (not next to
        known-bad points, never into a likely divergence), even where a long fitted
        length-scale says "flat". Once something diverged, it looks first at the edge of
        divergence (``EDGE_OF_DIVERGENCE``). Measured in development runs of
        ``benchmarks/bo_regret.py`` against other rules: the feasible point of highest
        posterior sd (the first rule; it piled points on the bounds), the one farthest
        from the data (plateau median regret 0.0071 and 0.0020, the optimistic mean
        0.0016); restricting it to points the honest GP does not rule out (mean - 2 sd
        below the incumbent) left the plateau's p90 at 1.9 instead of 0.41.

        Returns:
            The point in search coordinates, ``(d,)``.
        """
        return self._maximise(self.acquisition_function(optimistic=True), salt=2, edge=True)

    def gap_point(self) -> tuple[torch.Tensor, float]:
        """The centre of the largest hole in the data, and its radius.

        The radius of a candidate is its distance to the nearest evaluated point or to
        the boundary, whichever is nearer (in fractions of each range, divided by
        sqrt(dimensions)): a hole's centre, not a bound, which the optimistic
        exploration step tends to pick once every gap looks alike. Candidates are
        points the honest GP does not rule out (``GAP_LOWER_BOUND_SD``), that are
        likely to train and not excluded (next to a trial, above a divergence).

        Returns:
            The point in search coordinates, ``(d,)``, and its radius (0 when no
            candidate is left).
        """
        X = self.space.coords_to_unit(torch.stack([self._coords(o) for o in self.observations]))
        engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed + len(X))
        unit = engine.draw(GAP_CANDIDATES, dtype=DTYPE)
        candidates = self.space.unit_to_coords(unit)
        keep = ~self._excluded(candidates) & self._likely_to_train(candidates)
        prediction = self.predict(candidates)
        if prediction is not None:
            mean, sd = prediction
            keep &= mean - GAP_LOWER_BOUND_SD * sd < self.best_f()
        if not keep.any():
            return candidates[0], 0.0
        unit, candidates = unit[keep], candidates[keep]
        to_data = torch.cdist(unit, X).min(dim=1).values
        to_boundary = torch.minimum(unit, 1 - unit).min(dim=1).values
        radius = torch.minimum(to_data, to_boundary) / math.sqrt(self.space.dim)
        i = int(torch.argmax(radius))
        return candidates[i], float(radius[i])

    def _refining(self, coords: torch.Tensor) -> bool:
        """Whether ``coords`` lies within ``REFINING_RADIUS`` of the incumbent."""
        best = self.best()
        if best is None:
            return False
        incumbent = self.space.to_coords(best.params)
        unit = self.space.coords_to_unit(torch.stack([coords.to(DTYPE), incumbent]))
        distance = (unit[0] - unit[1]).norm()
        return float(distance) / math.sqrt(self.space.dim) <= REFINING_RADIUS

    def ask(self) -> dict[str, float]:
        """Propose the next point to evaluate (deterministic given the observations).

        The proposal is cached until the next ``tell``: the study draws it into the
        iteration figure and then evaluates it, and must not optimise twice.
        """
        n = len(self.observations)
        if self._proposal is not None and self._proposal[0] == n:
            self.last_proposal_kind = self._proposal[2]
            return dict(self._proposal[1])
        params = self._propose(n)
        self._proposal = (n, dict(params), self.last_proposal_kind)
        return params

    def _propose(self, n: int) -> dict[str, float]:
        acq = None if n < self.n_init else self.acquisition_function()
        if acq is None:
            self.last_proposal_kind = "sobol"
            return self._sobol(n)
        coords = self._maximise(acq, salt=1)
        constrained = self.models()[1] is not None
        kind = self.acquisition
        self.last_proposal_kind = f"{kind}+feasibility" if constrained else kind
        if is_final_step(n, self.budget):
            pass  # too late to follow up a look elsewhere: sharpen the incumbent
        elif self._stagnant() and self._not_worth_it(coords):
            self.last_proposal_kind = "explore"
            coords = self.exploration_point()
        elif self.gap_radius is not None and n >= self.n_init + 2 and self._refining(coords):
            # Two model steps first: the design alone leaves every range half empty.
            # After one (development runs): six_hump_camel 0.32 -> 0.41, plateau
            # 0.0014 -> 0.0019; Forrester 0.0008 -> 0.0005, the rest about equal.
            centre, radius = self.gap_point()
            if radius > self.gap_radius:
                self.last_proposal_kind = "gap"
                coords = centre
        return self.space.from_coords(coords)

    def run(
        self, objective: Callable[[dict[str, float]], float | None], budget: int
    ) -> Observation | None:
        """Evaluate ``objective`` until ``budget`` observations exist.

        Args:
            objective: Maps parameters to a value to minimise (``None``/NaN = failure).
            budget: Total number of evaluations, counting earlier ones; it becomes the
                optimiser's ``budget`` (its last step refines).

        Returns:
            The incumbent.
        """
        if budget != self.budget:
            self._proposal = None  # asked under another budget: its last step may differ
            self.budget = budget
        while len(self.observations) < budget:
            params = self.ask()
            value = objective(params)
            self.tell(params, value, "ok")
        return self.best()
