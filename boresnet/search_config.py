"""The search's typed config: the searched parameters and the Bayesian optimisation study.

Part of the config schema (:class:`boresnet.config.Config` holds a :class:`SearchConfig`);
each value is validated on creation, each error naming its field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from boresnet.config_checks import check_fields, check_tuner_choices, require

MAX_BUDGET = 10_000  # more evaluations is a typo (the GP's cost grows with the cube of it)
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


# Sobol points per searched parameter when search.n_init is null (measured: see n_init).
DESIGN_PER_PARAM = 2
# ... but the design takes at most this share of a known budget, and never fewer than
# one point more than the parameters (a simplex). Only 3 or more parameters at small
# budgets are affected (1-D: 2 points always; 2-D: 4 from budget 10 on). With 3
# parameters at budget 10 the 6-point design left 4 model steps: 4 points instead
# lowered lr_mom_wd's median regret 0.0746 -> 0.0555 (16 of 30 paired instances
# better, 8 worse; 3 points: 0.0522). With 2 parameters at budget 10, 3 points instead
# of 4 was a coin flip (momentum 0.0237 -> 0.0187, lr_warmup 0.0217 -> 0.0263, six-hump
# camel 0.0023 -> 0.0034): 40% keeps the 4 (docs/benchmarks.md).
DESIGN_SHARE = Fraction(2, 5)  # exact: 0.4 * 15 in floats rounds up to 7


def design_size(n_params: int, budget: int | None, n_init: int | None = None) -> int:
    """Sobol points before the model: ``n_init``, or 2 per parameter, within the budget.

    Without ``n_init``: 2 per parameter, but at most ``DESIGN_SHARE`` of the budget
    (never fewer than ``n_params + 1``), and never more than the budget.

    Args:
        n_params: How many parameters are searched.
        budget: The study's number of evaluations (``None``: unknown, no cap).
        n_init: An explicit size, which wins.
    """
    if n_init is not None:
        return n_init
    size = DESIGN_PER_PARAM * n_params
    if budget is None:
        return size
    share = max(n_params + 1, math.ceil(DESIGN_SHARE * budget))
    return min(size, share, budget)


@dataclass
class SearchConfig:
    """The Bayesian optimisation study.

    That each searched range lies inside its ``optim`` field's own range is checked by
    :class:`boresnet.config.Config`, which holds both.
    """

    params: list[ParamConfig] = field(default_factory=lambda: [ParamConfig()])
    # Evaluations in all; the last one refines rather than explores (boresnet/tuner/
    # rules.py FINAL_STEPS_WITHOUT_EXPLORING).
    budget: int = 10
    # Sobol points before the model; null: 2 per searched parameter (at most the
    # budget). In 1-D a third point raised cliff's median regret 2.6x and did not
    # help elsewhere (benchmarks/results/bo_regret.md); in 2-D (lr x momentum) four
    # points instead of two lowered the median regret from 0.080 to 0.066 and the p90
    # from 0.51 to 0.17 (measured before the short-sighted exploration model;
    # benchmarks/bo_regret.py, docs/benchmarks.md).
    n_init: int | None = None
    # Validation loss rather than error: it is continuous where accuracy saturates.
    objective: Literal["val_loss", "val_error"] = "val_loss"
    # Model log(objective): loss curves span decades (0.1 at the optimum, 2.3 at chance),
    # and on the log scale a stationary GP fits both the valley and the plateau. It
    # lowered the median regret 1.6-5.6x on 4 of the 7 landscape families and raised it
    # on cliff (0.0025 vs 0.0014) and two_minima (0.0011 vs 0.0002); pooled median
    # 0.0006 vs 0.0013 (docs/benchmarks.md).
    transform: Literal["none", "log"] = "log"
    acquisition: str = "logei"
    # How failed/diverged trials inform the search (boresnet/tuner/): a
    # feasibility GP with constrained log-EI, exclusion zones, or worst-value imputation
    # (8.8x and 1.9x the feasibility model's median regret on the cliff family, 5.4x
    # and 86x on wide: docs/benchmarks.md).
    failures: Literal["feasibility", "exclude", "impute"] = "feasibility"
    kernel: Literal["matern", "rbf"] = "matern"
    # The feasibility GP's linear mean, in the learning rate (in every parameter when lr
    # is not searched; boresnet/tuner/surrogate.py): beyond a divergence it stays pessimistic;
    # without it the median regret is 1.4x on cliff, 2.1x on wide, 1.2x on momentum,
    # and the pooled 90th percentile 0.034 instead of 0.027 (docs/benchmarks.md).
    feasibility_trend: bool = True
    # Never re-evaluate within 0.01 decades of a trial (issue: lr = 1 evaluated twice).
    min_distance: float = 0.01
    # Explore instead of refining by less than a worthwhile gain once the best has
    # stalled for this many evaluations (boresnet/tuner/rules.py); null: never. Without
    # it the plateau family's median regret is 11x and the pooled 90th percentile
    # goes from 0.027 to 0.103 (docs/benchmarks.md).
    explore_after: int | None = 2
    # While the model only refines its incumbent, evaluate the centre of the largest
    # hole in the data when its radius (a fraction of the range, divided by
    # sqrt(dimensions)) exceeds this and the GP does not rule it out (boresnet/
    # tuner/rules.py); null: never. 0.2 (docs/benchmarks.md): Forrester's p90 regret
    # 5.04 -> 0.009 (a quarter of the runs crawled into its local minimum), Levy's
    # 0.45 -> 0.004, two_minima's median 0.0016 -> 0.0011; it costs cliff's median
    # 0.0009 -> 0.0025 and plateau's 0.0011 -> 0.0014. At 0.15 (development runs) the
    # camel's median was 0.49 (0.28 without), and without the GP's veto momentum's
    # 0.071 (0.049).
    gap_radius: float | None = 0.2
    # 10 restarts from 512 raw samples: a BO step takes 0.10 s in 1-D, 0.18 s in 3-D
    # with 30 points (benchmarks/throughput.py), far below a trial's cost.
    num_restarts: int = 10
    raw_samples: int = 512
    max_consecutive_failures: int = 3
    # Trials in flight at once, on Ray (engine.*); 1: one after another, in this
    # process, without Ray (the proposals and journal of a sequential study).
    parallel: int = 1

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
                self.n_init <= self.budget,
                "search.n_init",
                f"initial design ({self.n_init}) is larger than the budget ({self.budget})",
            )
        check_tuner_choices(
            acquisition=self.acquisition,
            transform=self.transform,
            failures=self.failures,
            kernel=self.kernel,
        )
        require(self.num_restarts >= 1, "search.num_restarts", "must be >= 1")
        require(
            self.explore_after is None or self.explore_after >= 0,
            "search.explore_after",
            f"must be >= 0 or null, got {self.explore_after}",
        )
        require(
            self.gap_radius is None or 0 < self.gap_radius < 1,
            "search.gap_radius",
            f"must be in (0, 1) or null, got {self.gap_radius}",
        )
        require(
            0 <= self.min_distance < 1,
            "search.min_distance",
            f"must be in [0, 1), got {self.min_distance}",
        )
        require(
            self.raw_samples >= self.num_restarts,
            "search.raw_samples",
            "must be >= search.num_restarts",
        )
        require(
            self.max_consecutive_failures >= 1, "search.max_consecutive_failures", "must be >= 1"
        )
        require(self.parallel >= 1, "search.parallel", f"must be >= 1, got {self.parallel}")

    @property
    def design_size(self) -> int:
        """Sobol points before the model (:func:`design_size`)."""
        return design_size(len(self.params), self.budget, self.n_init)
