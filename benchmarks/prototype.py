"""The original prototype's surrogate, kept for the benchmark that compares against it.

A zero-noise GP (jitter 1e-5) with a Matern-3/2 kernel on raw targets, its variance and
lengthscale restarted at 0.5/0.5 and refitted by plain Adam every iteration. boresnet's
own optimiser does not use this (see :mod:`boresnet.tuner`); ``benchmarks/bo_regret.py``
imports it (its ``prototype`` method, run by ``tests/test_benchmarks.py``).
"""

from __future__ import annotations

import gpytorch
import torch


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, likelihood) -> None:
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean()
        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.MaternKernel(nu=1.5))

    def forward(self, x: torch.Tensor):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def prototype_gp(x: torch.Tensor, y: torch.Tensor, steps: int = 400) -> _ExactGP:
    """Fit the prototype's GP to 1-D inputs ``x`` (n,) and raw targets ``y`` (n,)."""
    likelihood = gpytorch.likelihoods.FixedNoiseGaussianLikelihood(noise=torch.full_like(y, 1e-5))
    model = _ExactGP(x.unsqueeze(-1), y, likelihood).double()
    model.covar_module.outputscale = 0.5
    model.covar_module.base_kernel.lengthscale = 0.5
    model.train()
    likelihood.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -mll(model(x.unsqueeze(-1)), y)
        loss.backward()
        optimizer.step()
    model.eval()
    likelihood.eval()
    return model


def prototype_ei(model: _ExactGP, grid: torch.Tensor, best: float) -> torch.Tensor:
    """Expected improvement (minimisation) of the noiseless posterior on a 1-D grid."""
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False):
        post = model(grid.unsqueeze(-1))
        mean, std = post.mean, post.variance.clamp_min(1e-12).sqrt()
    z = (best - mean) / std
    normal = torch.distributions.Normal(0.0, 1.0)
    return (best - mean) * normal.cdf(z) + std * normal.log_prob(z).exp()
