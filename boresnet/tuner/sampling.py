"""The optimiser's randomness: seeded by its own seed and the step, never the process.

A resumed study (a fresh process) must propose what the unbroken one would have, so
every random draw (the GP's initial weights, the acquisition's restarts, the Sobol
points) takes a seed derived here from the optimiser's seed and how many observations
it has been told.
"""

from __future__ import annotations

import torch
from torch.quasirandom import SobolEngine

from boresnet.tuner.observations import DTYPE

SEED_STRIDE = 100_003
# One stream per use, so that the GP fits and the acquisition's restarts of the same
# step never share a seed (multipliers of the observation count; the salt says which
# model or which kind of step).
GP_STREAM = 31
ACQUISITION_STREAM = 7919


def step_seed(seed: int, n: int, stream: int, salt: int) -> int:
    """The seed of one random choice: the optimiser's ``seed``, ``n`` observations.

    Args:
        seed: The optimiser's seed.
        n: How many observations it has been told.
        stream: ``GP_STREAM`` or ``ACQUISITION_STREAM``.
        salt: Which model (0 objective, 1 feasibility) or step (1 model, 2 exploration).
    """
    return seed * SEED_STRIDE + stream * n + salt


def sobol_unit(dim: int, count: int, seed: int, skip: int = 0) -> torch.Tensor:
    """``count`` points of the scrambled Sobol sequence in the unit cube, after ``skip``.

    Returns:
        ``(count, dim)`` points.
    """
    engine = SobolEngine(dim, scramble=True, seed=seed)
    return engine.draw(skip + count, dtype=DTYPE)[skip:]
