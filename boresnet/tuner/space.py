"""The search space: named parameters with bounds and a log or linear scale.

The optimiser works in *search coordinates* (log10 of the value for log-scale
parameters, the value itself otherwise); BoTorch's ``Normalize`` maps those bounds to the
unit cube inside the GP. :class:`ParamSpec` is the tuner's own parameter specification:
it knows nothing of where the parameters come from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

# How far (a fraction of the range, in search coordinates) a value read back may stray
# outside its bounds: rounding through log10 and 10**x, never a real excursion.
BOUND_TOLERANCE = 1e-9
# The default name of the step size: training diverges as it grows (the feasibility
# model's trend and the divergence rule are about it).
LEARNING_RATE = "lr"


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter.

    Attributes:
        name: Its name, the key of its value in every point.
        low: The lower bound (above 0 on a log scale).
        high: The upper bound.
        scale: ``log`` (searched in log10) or ``linear``.

    Raises:
        ValueError: Bounds that are not finite, not ordered, or not positive on a log scale.
    """

    name: str
    low: float
    high: float
    scale: Literal["log", "linear"] = "log"

    def __post_init__(self) -> None:
        if self.scale not in ("log", "linear"):
            raise ValueError(f"{self.name}: scale must be log or linear, got {self.scale!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"{self.name}: needs finite low < high, got [{self.low}, {self.high}]")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scale parameter needs low > 0, got {self.low}")


class SearchSpace:
    """An ordered set of parameters to search.

    Args:
        params: The parameters (anything with ``name``, ``low``, ``high`` and ``scale``
            is copied into a :class:`ParamSpec`).
        rate: The name of the step size, whose growth makes training diverge (``None``:
            none is searched under another name).
    """

    def __init__(self, params: Sequence[Any], rate: str | None = LEARNING_RATE) -> None:
        self.params = [ParamSpec(p.name, p.low, p.high, p.scale) for p in params]
        self.rate = rate

    @property
    def names(self) -> list[str]:
        """Parameter names, in order."""
        return [p.name for p in self.params]

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.params)

    @property
    def rate_column(self) -> int | None:
        """The learning rate's coordinate (``None`` when the rate is not searched)."""
        names = self.names
        return names.index(self.rate) if self.rate in names else None

    def _coord(self, p: ParamSpec, value: float) -> float:
        return math.log10(value) if p.scale == "log" else float(value)

    def bounds(self, dtype: torch.dtype = torch.double) -> torch.Tensor:
        """Return the ``(2, d)`` bounds in search coordinates."""
        low = [self._coord(p, p.low) for p in self.params]
        high = [self._coord(p, p.high) for p in self.params]
        return torch.tensor([low, high], dtype=dtype)

    def to_coords(self, values: dict[str, float], dtype: torch.dtype = torch.double):
        """Map ``{name: value}`` to a ``(d,)`` tensor of search coordinates."""
        missing = set(self.names) - set(values)
        if missing:
            raise KeyError(f"parameters missing: {sorted(missing)}")
        return torch.tensor([self._coord(p, values[p.name]) for p in self.params], dtype=dtype)

    def from_coords(self, x: torch.Tensor) -> dict[str, float]:
        """Map a ``(d,)`` tensor of search coordinates to ``{name: value}``, clipped."""
        out = {}
        for p, c in zip(self.params, x.tolist(), strict=True):
            value = 10.0**c if p.scale == "log" else c
            out[p.name] = float(min(max(value, p.low), p.high))
        return out

    def unit_to_coords(self, u: torch.Tensor) -> torch.Tensor:
        """Map points of the unit cube (``(..., d)``) to search coordinates."""
        b = self.bounds(u.dtype)
        return b[0] + u * (b[1] - b[0])

    def coords_to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Map search coordinates (``(..., d)``) to fractions of each parameter's range."""
        b = self.bounds(x.dtype)
        return (x - b[0]) / (b[1] - b[0])

    def to_unit(self, values: dict[str, float]) -> torch.Tensor:
        """Map ``{name: value}`` to fractions of each parameter's range (``(d,)``)."""
        return self.coords_to_unit(self.to_coords(values))

    def from_unit(self, u: torch.Tensor) -> dict[str, float]:
        """Map a point of the unit cube to ``{name: value}``."""
        return self.from_coords(self.unit_to_coords(u))

    def check(self, values: dict[str, Any]) -> None:
        """Raise ``ValueError`` unless ``values`` is a point of this space.

        Exactly the searched names, each a finite number inside its bounds (to within
        ``BOUND_TOLERANCE`` of the range, for values that went through a log and back),
        and above 0 on a log scale. For values read back from a run folder.
        """
        if set(values) != set(self.names):
            raise ValueError(f"params {sorted(values)} are not the searched {self.names}")
        for p in self.params:
            value = values[p.name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"params.{p.name} is not a number: {value!r}")
            if not math.isfinite(value) or (p.scale == "log" and value <= 0):
                raise ValueError(f"params.{p.name} = {value} is not a valid {p.scale} value")
            low, high = self._coord(p, p.low), self._coord(p, p.high)
            slack = BOUND_TOLERANCE * (high - low)
            if not low - slack <= self._coord(p, value) <= high + slack:
                raise ValueError(f"params.{p.name} = {value} is outside [{p.low}, {p.high}]")

    def describe(self) -> list[dict[str, Any]]:
        """Return the space as plain data (recorded with every journal line)."""
        return [
            {"name": p.name, "low": p.low, "high": p.high, "scale": p.scale} for p in self.params
        ]
