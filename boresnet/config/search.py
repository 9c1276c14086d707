"""The search's typed config: the searched parameters and the Bayesian optimisation study.

Part of the config schema (:class:`boresnet.config.Config` holds a :class:`SearchConfig`);
each value is validated on creation, each error naming its field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from boresnet.config.checks import ConfigError, check_fields, require
from boresnet.tuner import Fidelity, TunerSettings, check_fidelity_kernel, design_size
from boresnet.tuner.defaults import SETTINGS

DEFAULTS = TunerSettings()

MAX_BUDGET = 10_000  # more evaluations is a typo (the GP's cost grows with the cube of it)
# Where a range can be searched and drawn: 10**x and matplotlib's log axes overflow
# far beyond (a range of [1e-300, 1e300] broke the first figure).
LOG_LIMITS = (1e-30, 1e30)
TUNABLE = ("lr", "momentum", "weight_decay", "label_smoothing", "warmup_fraction")


@dataclass
class ParamConfig:
    """One searched hyperparameter: an ``optim`` field, its bounds and scale."""

    name: str = "lr"
    low: float = 1e-4
    high: float = 1.0
    scale: Literal["log", "linear"] = "log"

    def __post_init__(self) -> None:
        where = f"search.params[{self.name}]"
        check_fields(self, where)
        require(
            self.name in TUNABLE,
            f"{where}.name",
            f"unknown parameter {self.name!r}; allowed: {', '.join(TUNABLE)}",
        )
        require(
            math.isfinite(self.low) and math.isfinite(self.high), where, "bounds must be finite"
        )
        require(
            self.low < self.high, where, f"low must be < high, got low={self.low}, high={self.high}"
        )
        if self.scale == "log":
            require(
                self.low > 0, f"{where}.low", f"a log-scale parameter needs low > 0, got {self.low}"
            )
            require(
                LOG_LIMITS[0] <= self.low and self.high <= LOG_LIMITS[1],
                where,
                f"a log-scale range must lie in [{LOG_LIMITS[0]:g}, {LOG_LIMITS[1]:g}] to be "
                f"searched and drawn, got [{self.low:g}, {self.high:g}]",
            )
        else:
            require(
                max(abs(self.low), abs(self.high)) <= LOG_LIMITS[1],
                where,
                f"a linear range must lie in [-{LOG_LIMITS[1]:g}, {LOG_LIMITS[1]:g}], "
                f"got [{self.low:g}, {self.high:g}]",
            )


@dataclass
class FidelityConfig:
    """Short evaluations: the whole schedule compressed into fewer epochs.

    Give ``lengths`` (epochs, the full ``trainer.max_epochs`` added if missing) or
    ``low`` (the full length halved down to it: ``low: 0.25`` with 2 epochs is 0.25,
    0.5, 1 and 2). A length under one epoch trains on that share of each epoch's
    batches. With a fidelity, ``search.budget`` counts compute in full trainings.
    """

    name: Literal["epochs"] = "epochs"
    low: float | None = None
    lengths: list[float] | None = None

    def __post_init__(self) -> None:
        check_fields(self, "search.fidelity")
        require(
            (self.low is None) != (self.lengths is None),
            "search.fidelity",
            "give either low or lengths",
        )
        if self.low is not None:
            require(self.low > 0, "search.fidelity.low", f"must be > 0, got {self.low}")
        else:
            require(
                all(isinstance(v, int | float) and v > 0 for v in self.lengths),
                "search.fidelity.lengths",
                f"must be positive epochs, got {self.lengths}",
            )

    def fidelity(self, full: int) -> Fidelity:
        """The tuner's :class:`Fidelity` for a full length of ``full`` epochs.

        Raises:
            ConfigError: A length over ``full``, or ``low`` not ``full`` halved.
        """
        try:
            if self.low is not None:
                return Fidelity.halvings(self.name, self.low, full)
            require(
                max(self.lengths) <= full,
                "search.fidelity.lengths",
                f"must not exceed trainer.max_epochs ({full}), got {self.lengths}",
            )
            return Fidelity(self.name, tuple(sorted({*map(float, self.lengths), float(full)})))
        except ValueError as err:
            raise ConfigError(f"search.fidelity: {str(err).split(': ', 1)[-1]}") from err


@dataclass
class SearchConfig:
    """The Bayesian optimisation study.

    That each searched range lies inside its ``optim`` field's own range is checked by
    :class:`boresnet.config.Config`, which holds both.
    """

    params: list[ParamConfig] = field(default_factory=lambda: [ParamConfig()])
    # Evaluations in all (``Trainer.fit`` calls); the last one refines rather than explores.
    # With a fidelity: compute in full trainings (a run of 1 of 2 epochs counts 0.5).
    budget: int = 10
    # Sobol points before the model; null: 2 per searched parameter (boresnet/tuner/defaults.py).
    n_init: int | None = None
    # Validation loss rather than error: it is continuous where accuracy saturates.
    objective: Literal["val_loss", "val_error"] = "val_loss"
    # The tuner's settings: defaults and their measured reasons in boresnet/tuner/defaults.py.
    transform: Literal["none", "log"] = DEFAULTS.transform
    acquisition: str = DEFAULTS.acquisition
    failures: Literal["feasibility", "exclude", "impute"] = DEFAULTS.failures
    kernel: Literal["matern", "rbf"] = DEFAULTS.kernel
    feasibility_trend: bool = DEFAULTS.feasibility_trend
    min_distance: float = DEFAULTS.min_distance
    explore_after: int | None = DEFAULTS.explore_after
    gap_radius: float | None = DEFAULTS.gap_radius
    num_restarts: int = DEFAULTS.num_restarts
    raw_samples: int = DEFAULTS.raw_samples
    # Failed trials in a row that stop the study (a broken setup, not a bad rate).
    max_consecutive_failures: int = 3
    # Trials in flight at once, on Ray (engine.*); 1: one after another, in this
    # process, without Ray (the proposals and journal of a sequential study).
    parallel: int = 1
    # Short evaluations modelled with full ones (null: every evaluation is full length).
    fidelity: FidelityConfig | None = None

    def __post_init__(self) -> None:
        check_fields(self, "search")
        require(len(self.params) >= 1, "search.params", "needs at least one parameter")
        names = [p.name for p in self.params]
        require(len(set(names)) == len(names), "search.params", f"duplicate names in {names}")
        require(
            1 <= self.budget <= MAX_BUDGET,
            "search.budget",
            f"must be in [1, {MAX_BUDGET}], got {self.budget}",
        )
        if self.n_init is not None:
            require(self.n_init >= 1, "search.n_init", f"must be >= 1, got {self.n_init}")
            require(
                self.fidelity is not None or self.n_init <= self.budget,
                "search.n_init",
                f"initial design ({self.n_init}) is larger than the budget ({self.budget})",
            )
        try:  # the tuner owns its settings' ranges and lists: one check, named here
            TunerSettings(**{name: getattr(self, name) for name in SETTINGS})
            if self.fidelity is not None:
                check_fidelity_kernel(self.kernel)
        except ValueError as err:
            raise ConfigError(f"search.{err}") from err
        require(
            self.max_consecutive_failures >= 1, "search.max_consecutive_failures", "must be >= 1"
        )
        require(self.parallel >= 1, "search.parallel", f"must be >= 1, got {self.parallel}")

    @property
    def design_size(self) -> int:
        """Sobol points before the model (:func:`design_size`)."""
        return design_size(len(self.params), self.budget, self.n_init)
