"""The two GPs fitted to one set of observations: the objective's and the feasibility's.

The objective GP is a ``SingleTaskGP`` with inputs normalised to the unit cube, outcomes
standardised, and (``transform="log"``) log(objective) as its target
(:func:`~boresnet.tuner.observations.log_shift`). With ``failures="feasibility"`` a
second GP models +1 (trained) / -1 (failed or diverged) once there is at least one of
each; its probability of failure weights the acquisition. A :class:`Surrogate` is a
snapshot: the optimiser builds a new one whenever it is told a result.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from botorch.exceptions import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP, SingleTaskMultiFidelityGP
from botorch.models.transforms import Normalize, Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.constraints import GreaterThan
from gpytorch.means import LinearMean, Mean
from gpytorch.mlls import ExactMarginalLogLikelihood

from boresnet.tuner.fidelity import Fidelity
from boresnet.tuner.observations import (
    DTYPE,
    Observation,
    feasibility_data,
    log_shift,
    modelled,
    objective_data,
)
from boresnet.tuner.sampling import GP_STREAM, step_seed
from boresnet.tuner.space import SearchSpace

# The objective GP's kernel over (parameters, length): BoTorch's linear truncated fidelity
# kernel, or a Matern kernel over every column ("matern": pooled median 0.039 against 0.0034
# at budget 4, the boresnet_mf_matern ablation of bo_regret.py --fidelity).
FIDELITY_KERNEL = "linear_truncated"
# The noise floor (standardised units) of the one refit after a failed fit: the width-8
# table's 51 noise-free means (3 lengths, 2 full runs) failed to fit (NotPSDError) for 14 of
# 40 seeds; refitted with this floor none did, without it 1 (joint_extrapolation.py
# --full=-0.5,-0.25 is one of them).
RETRY_NOISE_FLOOR = 1e-2
# Relative spread below which outcomes count as constant: fitting a GP to constant data
# (e.g. one success with failures imputed at its value, a spread of ~1e-17) is noise.
CONSTANT_SPREAD = 1e-9


def check_fidelity_kernel(kernel: str) -> None:
    """Raise ``ValueError`` ``"kernel: ..."`` for a kernel a fidelity's objective GP cannot use.

    With a fidelity the objective GP is ``SingleTaskMultiFidelityGP``, whose
    ``LinearTruncatedFidelityKernel`` is a Matern-5/2: an ``rbf`` would be ignored.
    """
    if kernel != "matern" and FIDELITY_KERNEL == "linear_truncated":
        raise ValueError(
            f"kernel: {kernel!r} is not available with a fidelity (its GP's kernel is"
            " BoTorch's LinearTruncatedFidelityKernel, a Matern-5/2); use matern"
        )


class ColumnTrend(Mean):
    """A linear prior mean in some input columns only (constant in the others).

    Args:
        columns: The input columns the mean is linear in.
    """

    def __init__(self, columns: Sequence[int]) -> None:
        super().__init__()
        self.columns = list(columns)
        self.linear = LinearMean(len(self.columns))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean at ``x``, ``(..., n, d)`` -> ``(..., n)``."""
        return self.linear(x[..., self.columns])


def trend_columns(space: SearchSpace) -> tuple[int, ...]:
    """The columns of the feasibility GP's linear mean: the learning rate's, if searched.

    SGD's stability limit is a rate, whatever else is searched, so a divergence says
    "lower the rate". A trend fitted over every parameter to a handful of points tilts
    toward whatever the first divergence happened to be high in, and can judge higher
    rates *safer* (docs/decisions/0002-failures-and-divergence.md). Without a searched
    rate (:attr:`SearchSpace.rate_column`) the trend is linear in every parameter.
    """
    j = space.rate_column
    return tuple(range(space.dim)) if j is None else (j,)


def fit_gp(
    space: SearchSpace,
    X: torch.Tensor,
    Y: torch.Tensor,
    kernel: str,
    seed: int,
    trend: Sequence[int] = (),
    fidelity_column: int | None = None,
) -> SingleTaskGP | None:
    """Fit a GP to ``(X, Y)``, or return ``None`` for too little or constant data.

    Args:
        space: The search space (its bounds normalise the inputs).
        X: Search coordinates, ``(n, d)``.
        Y: Targets, ``(n, 1)``.
        kernel: ``matern`` (Matern-5/2) or ``rbf``, with BoTorch's dimension-scaled
            length-scale prior.
        seed: Seeds the build and the fit (:func:`~boresnet.tuner.sampling.step_seed`).
        trend: The input columns of a linear prior mean (every column:
            ``LinearMean``); empty: a constant mean.
        fidelity_column: The length's column: BoTorch's ``SingleTaskMultiFidelityGP``
            (a ``LinearTruncatedFidelityKernel``: a shorter run is the full-length
            function plus a bias that grows as the length shrinks, so short runs inform
            the full length from the first one), with a constant mean.
    """
    spread = float(Y.max() - Y.min()) if len(Y) else 0.0
    if len(X) < 2 or spread <= CONSTANT_SPREAD * max(1.0, float(Y.abs().max())):
        return None  # too little, or constant: a GP would only model rounding
    # Build and fit under one seed: LinearMean draws its initial weights from the global
    # generator, so building outside would make a proposal depend on what the process
    # did before (a resumed study would diverge from an unbroken one).
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        transforms = dict(
            input_transform=Normalize(space.dim, bounds=space.bounds(DTYPE)),
            outcome_transform=Standardize(1),
        )
        if fidelity_column is not None and not trend and FIDELITY_KERNEL == "linear_truncated":
            model = SingleTaskMultiFidelityGP(
                X, Y, data_fidelities=[fidelity_column], nu=2.5,
                **transforms,
            )  # fmt: skip
        else:
            model = SingleTaskGP(
                X,
                Y,
                covar_module=get_covar_module_with_dim_scaled_prior(
                    space.dim, use_rbf_kernel=kernel == "rbf"
                ),
                mean_module=prior_mean(space.dim, trend),
                **transforms,
            )
        try:
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        except ModelFittingError:
            try:  # near noise-free data can leave no positive-definite fit: floor the noise
                floor = GreaterThan(RETRY_NOISE_FLOOR)
                model.likelihood.noise_covar.register_constraint("raw_noise", floor)
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            except ModelFittingError as err:
                warnings.warn(f"GP fit failed ({err}); falling back to space filling", stacklevel=3)
                return None
    model.eval()
    return model


def prior_mean(dim: int, trend: Sequence[int]) -> Mean | None:
    """A GP's prior mean: linear in the ``trend`` columns, or constant (``None``)."""
    if not trend:
        return None  # SingleTaskGP's constant mean
    if len(trend) == dim:
        return LinearMean(dim)
    return ColumnTrend(trend)


class Surrogate:
    """The objective and feasibility GPs of one set of observations, and what they say.

    Args:
        space: The search space.
        observations: Everything told so far, in order.
        transform: ``log`` or ``none`` (the objective GP's target).
        failures: ``feasibility``, ``exclude`` or ``impute`` (only ``feasibility`` fits
            the second GP; ``impute`` gives failures to the objective GP).
        kernel: ``matern`` or ``rbf``.
        feasibility_trend: Give the feasibility GP a linear mean in the learning rate
            (:func:`trend_columns`): divergence has a direction (it comes with a larger
            rate), so beyond a divergence the model stays pessimistic instead of
            reverting to "feasible" a few length-scales away.
        seed: The optimiser's seed.
        fidelity: The evaluations' lengths, if they vary: the models' last input.
    """

    def __init__(
        self,
        space: SearchSpace,
        observations: Sequence[Observation],
        transform: str,
        failures: str,
        kernel: str,
        feasibility_trend: bool,
        seed: int,
        fidelity: Fidelity | None = None,
    ) -> None:
        n = len(observations)
        self.dim = space.dim
        self.fidelity = fidelity
        if fidelity is not None:
            space = fidelity.extend(space)
        self.space = space
        self.transform = transform
        self.shift = log_shift(observations, transform)
        self.X, self.Y = objective_data(space, observations, transform, failures)
        column = None if fidelity is None else self.dim
        seed_0 = step_seed(seed, n, GP_STREAM, 0)
        self.objective = fit_gp(space, self.X, self.Y, kernel, seed_0, fidelity_column=column)
        self.feasibility = None
        if failures == "feasibility":
            X, Y = feasibility_data(space, observations)
            seed_1 = step_seed(seed, n, GP_STREAM, 1)
            trend = trend_columns(space) if feasibility_trend else ()
            self.feasibility = fit_gp(space, X, Y, kernel, seed_1, trend, column)

    def full(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., d)`` parameter coordinates at the full length (unchanged without a fidelity).

        Coordinates that already carry a length column (``(..., d + 1)``) pass through.
        """
        coords = coords.to(DTYPE)
        if self.fidelity is None or coords.shape[-1] == self.space.dim:
            return coords
        column = torch.full(
            (*coords.shape[:-1], 1), self.fidelity.coord(self.fidelity.full), dtype=DTYPE
        )
        return torch.cat([coords, column], dim=-1)

    def modelled(self, y: float) -> float:
        """An objective value in the objective GP's units."""
        return modelled(y, self.shift, self.transform)

    def best_f(self) -> float:
        """What EI improves upon: the lowest posterior mean at a modelled point.

        Robust to noise: a lucky draw does not set the bar (the observed minimum where
        there is no GP). With a fidelity, the means at the full length of every modelled
        point, whatever its length.
        """
        if self.objective is None:
            return float(self.Y.min())
        with torch.no_grad():
            return float(self.objective.posterior(self.full(self.X[:, : self.dim])).mean.min())

    def noise_sd(self) -> float | None:
        """The objective GP's estimate of the evaluation noise, in modelled units."""
        model = self.objective
        if model is None:
            return None
        noise = model.likelihood.noise.detach().mean() * model.outcome_transform.stdvs.pow(2)
        return float(noise.sqrt().squeeze())

    def predict(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Posterior mean and sd of the modelled target at ``(n, d)`` coords (full length)."""
        if self.objective is None:
            return None
        with torch.no_grad():
            post = self.objective.posterior(self.full(coords))
        return post.mean.squeeze(-1), post.variance.clamp_min(0).sqrt().squeeze(-1)

    def band(self, coords: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Posterior centre and 95% band ``(mid, low, high)`` in objective units.

        Gaussian in the modelled space, so with the log transform the band is
        ``shift + exp(mean +- 1.96 sd)``: exact quantiles, asymmetric in objective units.
        """
        pred = self.predict(coords)
        if pred is None:
            return None
        mean, std = pred
        mid, low, high = mean, mean - 1.96 * std, mean + 1.96 * std
        if self.transform == "log":
            return mid.exp() + self.shift, low.exp() + self.shift, high.exp() + self.shift
        return mid, low, high

    def failure_probability(self, coords: torch.Tensor) -> torch.Tensor | None:
        """Estimated probability that training fails at coords (``None``: no model)."""
        if self.feasibility is None:
            return None
        with torch.no_grad():
            post = self.feasibility.posterior(self.full(coords))
        mean, sd = post.mean.squeeze(-1), post.variance.clamp_min(1e-12).sqrt().squeeze(-1)
        return torch.distributions.Normal(0.0, 1.0).cdf(-mean / sd)
