"""What the optimiser was told, and the data its two models are fitted to.

An :class:`Observation` is one evaluated point with its status. The objective GP sees
the successes (with ``failures="impute"``, the failures too, at the worst finite value),
with the log transform applied; the feasibility GP sees every point as +1 (trained) or
-1 (failed or diverged). Both in *search coordinates* (:mod:`boresnet.tuner.space`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from boresnet.tuner.defaults import LOG_SHIFT_FRACTION
from boresnet.tuner.space import SearchSpace

DTYPE = torch.double
STATUSES = ("ok", "diverged", "failed")


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

    @classmethod
    def of(cls, params: dict[str, float], value: float | None, status: str) -> Observation:
        """The observation a result makes: a NaN or infinite value is a divergence.

        Args:
            params: The evaluated point.
            value: Its objective, or ``None`` / NaN if the trial failed or diverged.
            status: ``ok``, ``diverged`` or ``failed``; ``ok`` without a value is ``failed``,
                and a value given with another status is dropped (no model uses it).
        """
        if status != "ok":
            value = None
        if value is not None and not math.isfinite(value):
            value, status = None, status if status != "ok" else "diverged"
        if value is None and status == "ok":
            status = "failed"
        return cls(dict(params), value, status)

    def __post_init__(self) -> None:
        # The one invariant that makes ``ok`` a plain status check (as TrialRecord's).
        finite = self.value is not None and math.isfinite(self.value)
        if self.status not in STATUSES or (self.status == "ok") != finite:
            raise ValueError(
                f"inconsistent observation: status {self.status!r}, value {self.value}"
            )

    @property
    def ok(self) -> bool:
        """Whether the trial succeeded: status ``ok``, hence a finite objective."""
        return self.status == "ok"


def coords_of(space: SearchSpace, observations: Sequence[Observation]) -> torch.Tensor:
    """The observations' search coordinates, ``(n, d)``."""
    if not observations:
        return torch.empty(0, space.dim, dtype=DTYPE)
    return torch.stack([space.to_coords(o.params, DTYPE) for o in observations])


def imputed_value(observations: Sequence[Observation]) -> float | None:
    """Where failures are drawn (and, with ``impute``, modelled): the worst finite value."""
    finite = [o.value for o in observations if o.ok]
    return max(finite) if finite else None


def log_shift(observations: Sequence[Observation], transform: str) -> float:
    """What the log transform subtracts before taking the log (0: a plain log).

    0 while every finite result is positive; otherwise the lowest result minus
    ``LOG_SHIFT_FRACTION`` of the results' range (of its magnitude, or 1, where the
    range is 0), so that the log is defined and a zero or negative result is not an
    outlier. It is recomputed from the data, like the outcome standardisation.
    """
    finite = [o.value for o in observations if o.ok]
    if transform != "log" or not finite or min(finite) > 0:
        return 0.0
    low, spread = min(finite), max(finite) - min(finite)
    return low - LOG_SHIFT_FRACTION * (spread if spread > 0 else max(abs(low), 1.0))


def modelled(y: float, shift: float, transform: str) -> float:
    """An objective value in the objective GP's units: ``log(y - shift)`` or ``y``."""
    return math.log(y - shift) if transform == "log" else y


def objective_data(
    space: SearchSpace, observations: Sequence[Observation], transform: str, failures: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(X, Y)``: what the objective GP is fitted to.

    Search coordinates ``(n, d)`` and modelled objectives ``(n, 1)``: the successes,
    plus (with ``failures="impute"``) the failures at the worst finite value.
    """
    fill = imputed_value(observations) if failures == "impute" else None
    shift = log_shift(observations, transform)
    kept = [o for o in observations if o.ok or fill is not None]
    ys = [modelled(o.value if o.ok else fill, shift, transform) for o in kept]
    return coords_of(space, kept), torch.tensor(ys, dtype=DTYPE).reshape(-1, 1)


def feasibility_data(
    space: SearchSpace, observations: Sequence[Observation]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(X, Y)`` of the feasibility GP: every point, +1 if ok, -1 if not."""
    Y = torch.tensor([1.0 if o.ok else -1.0 for o in observations], dtype=DTYPE)
    return coords_of(space, observations), Y.reshape(-1, 1)


class Pending(NamedTuple):
    """A proposal whose trial is still running.

    Attributes:
        params: Its point.
        kind: How it was chosen (``sobol``, ``logei``, ``explore``, ``gap``...).
    """

    params: dict[str, float]
    kind: str
