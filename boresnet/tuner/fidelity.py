"""The fidelity: how long one evaluation runs, and what it costs.

A multi-fidelity search evaluates a point at one of a few lengths (epochs, say), the
longest being the full one. The models see the length as one more input, searched on a
log scale (:meth:`Fidelity.extend`), so a rate that a short run ranks well and a full
run confirms are one function of (rate, length); what is reported is always the
model's belief at the full length. An evaluation costs its length over the full one:
the budget counts full evaluations' worth of compute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from boresnet.tuner.space import ParamSpec, SearchSpace

# Relative slack when matching a length read back (e.g. through JSON) to a listed one.
LENGTH_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Fidelity:
    """The lengths one evaluation may run for.

    Attributes:
        name: The key of the length in every point (``epochs``).
        lengths: The allowed lengths, shortest first; the last is the full one, the only
            length whose results are reported.

    Raises:
        ValueError: Fewer than two lengths, or lengths that are not positive, finite and
            increasing.
    """

    name: str
    lengths: tuple[float, ...]

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in self.lengths)
        object.__setattr__(self, "lengths", values)
        if len(values) < 2:
            raise ValueError(f"{self.name}: needs two or more lengths, got {list(values)}")
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"{self.name}: lengths must be finite and > 0, got {list(values)}")
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError(f"{self.name}: lengths must increase, got {list(values)}")

    @classmethod
    def halvings(cls, name: str, low: float, full: float) -> Fidelity:
        """``full``, ``full / 2``, ``full / 4``... down to ``low`` (which must be one of them).

        Raises:
            ValueError: ``low`` is not ``full`` over a power of two below it.
        """
        if not (0 < low < full):
            raise ValueError(f"{name}: needs 0 < low < {full}, got {low}")
        steps = math.log2(full / low)
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(f"{name}: low {low} is not {full} halved a whole number of times")
        return cls(name, tuple(full / 2**k for k in range(round(steps), -1, -1)))

    @property
    def full(self) -> float:
        """The full length (the last)."""
        return self.lengths[-1]

    @property
    def shortest(self) -> float:
        """The shortest length."""
        return self.lengths[0]

    def cost(self, length: float) -> float:
        """What one evaluation at ``length`` costs, in full evaluations."""
        return length / self.full

    def coord(self, length: float) -> float:
        """``length`` in the models' coordinates (log10, like a log-scale parameter)."""
        return math.log10(length)

    def spec(self) -> ParamSpec:
        """The length as a log-scale parameter from the shortest to the full one."""
        return ParamSpec(self.name, self.shortest, self.full, "log")

    def extend(self, space: SearchSpace) -> SearchSpace:
        """The models' space: ``space``'s parameters, then the length (the last column)."""
        return SearchSpace([*space.params, self.spec()], rate=space.rate)

    def match(self, value: float) -> float:
        """The listed length ``value`` is (read back, it may differ in the last digits).

        Raises:
            ValueError: ``value`` is none of the lengths.
        """
        for length in self.lengths:
            if abs(value - length) <= LENGTH_TOLERANCE * length:
                return length
        raise ValueError(f"{self.name} = {value} is not one of the lengths {list(self.lengths)}")

    def of(self, params: dict[str, float]) -> float:
        """The length of a point (its ``name`` entry).

        Raises:
            ValueError: The point has no length, or one not listed.
        """
        if self.name not in params:
            raise ValueError(f"a multi-fidelity point needs its length {self.name!r}: {params}")
        return self.match(params[self.name])

    def spent(self, points: Sequence[dict[str, float]]) -> float:
        """The compute of evaluations at ``points``, in full evaluations."""
        return sum(self.cost(self.of(p)) for p in points)

    def exhausted(self, points: Sequence[dict[str, float]], budget: float) -> bool:
        """Whether ``budget`` is spent by evaluations at ``points``.

        No length fits in what is left, or less than one full evaluation is left and
        one has run (or runs): the study always ends with a full-length evaluation.
        """
        left = budget - self.spent(points) + 1e-9
        ran_full = any(self.of(p) == self.full for p in points)
        return left < self.cost(self.shortest) or (left < 1 and ran_full)
