"""Bayesian optimisation with BoTorch: a GP surrogate and Expected Improvement.

:class:`BayesianOptimizer` has an ask/tell interface. The first ``n_init`` proposals
are a scrambled Sobol design; after that each proposal maximises (log) Expected
Improvement of a ``SingleTaskGP`` fitted to every observation, with inputs normalised
to the unit cube and outcomes standardised. Objectives are minimised.

Failed and diverged trials enter the GP imputed at the worst finite value observed:
the region is then known to be bad, so EI moves away instead of proposing it again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from botorch.acquisition.analytic import ExpectedImprovement, LogExpectedImprovement
from botorch.exceptions import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.optim import optimize_acqf
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch.quasirandom import SobolEngine

from boresnet.space import SearchSpace

DTYPE = torch.double


@dataclass
class Observation:
    """One evaluated point.

    Attributes:
        params: Parameter values.
        value: Objective (``None`` for failed or diverged trials).
        status: ``ok``, ``diverged`` or ``failed``.
        extra: Anything else the caller recorded (kept, not modelled).
    """

    params: dict[str, float]
    value: float | None
    status: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the observation has a finite objective."""
        return self.status == "ok" and self.value is not None and math.isfinite(self.value)


class BayesianOptimizer:
    """Minimise a black-box function over a :class:`SearchSpace`.

    Args:
        space: What to search.
        n_init: Size of the initial Sobol design.
        acquisition: ``logei`` (maximise log EI: same maximiser, no underflow) or ``ei``.
        num_restarts: Starting points of the acquisition's gradient ascent.
        raw_samples: Random points from which those restarts are chosen.
        seed: Seeds the design and every acquisition optimisation, so the same
            observations always give the same proposals.
        transform: ``log`` models log(objective) instead of the objective: a loss that
            spans 0.1 to 2.3 across the range is then one smooth scale for a stationary
            kernel (see the README's benchmark section); ``none`` models it as it is.
    """

    def __init__(
        self,
        space: SearchSpace,
        n_init: int = 2,
        acquisition: str = "logei",
        num_restarts: int = 10,
        raw_samples: int = 512,
        seed: int = 0,
        transform: str = "none",
    ) -> None:
        if acquisition not in ("logei", "ei"):
            raise ValueError(f"acquisition must be logei or ei, got {acquisition!r}")
        if transform not in ("none", "log"):
            raise ValueError(f"transform must be none or log, got {transform!r}")
        self.transform = transform
        self.space = space
        self.n_init = n_init
        self.acquisition = acquisition
        self.num_restarts = num_restarts
        self.raw_samples = raw_samples
        self.seed = seed
        self.observations: list[Observation] = []
        self._model: SingleTaskGP | None = None
        self._model_n = -1
        self.last_proposal_kind = "sobol"

    # ---------------------------------------------------------------- data
    def tell(
        self, params: dict[str, float], value: float | None, status: str = "ok", **extra: Any
    ) -> Observation:
        """Record the result of evaluating ``params``.

        Args:
            params: The evaluated point.
            value: Its objective, or ``None`` / NaN if the trial failed or diverged.
            status: ``ok``, ``diverged`` or ``failed``.
            **extra: Stored with the observation.

        Returns:
            The new observation.
        """
        if value is not None and not math.isfinite(value):
            value, status = None, status if status != "ok" else "diverged"
        if value is None and status == "ok":
            status = "failed"
        obs = Observation(dict(params), value, status, extra)
        self.observations.append(obs)
        return obs

    def imputed_value(self) -> float | None:
        """Value given to failed trials: the worst finite objective seen so far."""
        finite = [o.value for o in self.observations if o.ok]
        return max(finite) if finite else None

    def _forward(self, y: float) -> float:
        # Floor before the log: a validation error can be exactly 0.
        return math.log(max(y, 1e-6)) if self.transform == "log" else y

    def train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(X, Y)``: search coordinates ``(n, d)`` and modelled targets ``(n, 1)``.

        Targets are the (transformed) objectives, failures imputed at the worst one.
        """
        fill = self.imputed_value()
        xs, ys = [], []
        for o in self.observations:
            if o.ok or fill is not None:
                xs.append(self.space.to_coords(o.params, DTYPE))
                ys.append(self._forward(o.value if o.ok else fill))
        if not xs:
            return torch.empty(0, self.space.dim, dtype=DTYPE), torch.empty(0, 1, dtype=DTYPE)
        return torch.stack(xs), torch.tensor(ys, dtype=DTYPE).unsqueeze(-1)

    def best_index(self) -> int | None:
        """Position of the incumbent (lowest finite objective) among the observations."""
        ok = [i for i, o in enumerate(self.observations) if o.ok]
        return min(ok, key=lambda i: self.observations[i].value) if ok else None

    def best(self) -> Observation | None:
        """The observation with the lowest finite objective (the incumbent)."""
        index = self.best_index()
        return None if index is None else self.observations[index]

    # ---------------------------------------------------------------- model
    def _rng(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 100_003 + salt)

    def fit(self) -> SingleTaskGP | None:
        """Fit (or return the cached) GP on all observations; ``None`` if too few."""
        n = len(self.observations)
        if self._model_n == n:
            return self._model
        X, Y = self.train_data()
        model = None
        if len(X) >= 2 and Y.std() > 0:
            model = SingleTaskGP(
                X,
                Y,
                input_transform=Normalize(self.space.dim, bounds=self.space.bounds(DTYPE)),
                outcome_transform=Standardize(1),
            )
            with torch.random.fork_rng():
                torch.manual_seed(self.seed * 100_003 + n)
                try:
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
                except ModelFittingError as err:
                    warnings.warn(
                        f"GP fit failed ({err}); falling back to space filling", stacklevel=2
                    )
                    model = None
            if model is not None:
                model.eval()
        self._model, self._model_n = model, n
        return model

    def best_f(self) -> float:
        """The incumbent value EI improves upon (lowest objective, imputed included)."""
        _, Y = self.train_data()
        return float(Y.min())

    def acquisition_function(self, log: bool | None = None):
        """The acquisition function on the current GP (``None`` before a GP exists)."""
        model = self.fit()
        if model is None:
            return None
        use_log = self.acquisition == "logei" if log is None else log
        cls = LogExpectedImprovement if use_log else ExpectedImprovement
        return cls(model, best_f=self.best_f(), maximize=False)

    def band(self, coords: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Posterior centre and 95% band ``(mid, low, high)`` in objective units.

        Gaussian in the modelled space, so with the log transform the band is
        ``exp(mean +- 1.96 sd)``: exact quantiles, asymmetric in objective units.
        """
        pred = self.predict(coords)
        if pred is None:
            return None
        mean, std = pred
        mid, low, high = mean, mean - 1.96 * std, mean + 1.96 * std
        if self.transform == "log":
            return mid.exp(), low.exp(), high.exp()
        return mid, low, high

    def predict(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """GP posterior mean and standard deviation of the modelled target at coords."""
        model = self.fit()
        if model is None:
            return None
        with torch.no_grad():
            post = model.posterior(coords.to(DTYPE))
        return post.mean.squeeze(-1), post.variance.clamp_min(0).sqrt().squeeze(-1)

    def expected_improvement(self, coords: torch.Tensor) -> torch.Tensor | None:
        """Analytic EI (not log) at ``(n, d)`` coords, for plotting."""
        with warnings.catch_warnings():
            # BoTorch advises LogEI for optimisation; plain EI is what we plot.
            warnings.simplefilter("ignore")
            acq = self.acquisition_function(log=False)
        if acq is None:
            return None
        with torch.no_grad():
            return acq(coords.to(DTYPE).unsqueeze(-2))

    # ---------------------------------------------------------------- ask
    def _sobol(self, index: int) -> dict[str, float]:
        engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed)
        u = engine.draw(index + 1, dtype=DTYPE)[index]
        return self.space.from_unit(u)

    def _near_failure(self, coords: torch.Tensor) -> bool:
        bounds = self.space.bounds(DTYPE)
        span = bounds[1] - bounds[0]
        for o in self.observations:
            if not o.ok:
                other = self.space.to_coords(o.params, DTYPE)
                if torch.max(torch.abs(other - coords) / span) < 1e-3:
                    return True
        return False

    def ask(self) -> dict[str, float]:
        """Propose the next point to evaluate (deterministic given the observations)."""
        n = len(self.observations)
        acq = None if n < self.n_init else self.acquisition_function()
        if acq is None:
            self.last_proposal_kind = "sobol"
            return self._sobol(n)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed * 100_003 + 7919 * n + 1)
            candidate, _ = optimize_acqf(
                acq,
                bounds=self.space.bounds(DTYPE),
                q=1,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
            )
        coords = candidate.detach().squeeze(0)
        if self._near_failure(coords):
            # EI should avoid imputed failures; if it still lands on one, explore.
            self.last_proposal_kind = "sobol"
            return self._sobol(n)
        self.last_proposal_kind = self.acquisition
        return self.space.from_coords(coords)

    def run(
        self, objective: Callable[[dict[str, float]], float | None], budget: int
    ) -> Observation | None:
        """Evaluate ``objective`` until ``budget`` observations exist.

        Args:
            objective: Maps parameters to a value to minimise (``None``/NaN = failure).
            budget: Total number of evaluations, counting earlier ones.

        Returns:
            The best observation.
        """
        while len(self.observations) < budget:
            params = self.ask()
            value = objective(params)
            self.tell(params, value, "ok")
        return self.best()
