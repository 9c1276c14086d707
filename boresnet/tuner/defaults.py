"""Every tuned default of the tuner, in one place, each with its measured reason.

:class:`TunerSettings` holds what a user may set (``boresnet bo``'s ``search`` section
takes its defaults from here); the constants below it are the rules' fixed numbers.
Regret figures are median regret on the generated landscape families of
``python benchmarks/bo_regret.py`` (20 instances a family unless said); the decisions
behind them are in ``docs/decisions/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction

# The choices of each setting that takes one from a list.
CHOICES = {
    "acquisition": ("logei", "ei"),
    "transform": ("none", "log"),
    "failures": ("feasibility", "exclude", "impute"),
    "kernel": ("matern", "rbf"),
}


@dataclass(frozen=True)
class TunerSettings:
    """What a user may set, with the defaults ``python benchmarks/bo_regret.py`` chose.

    Attributes:
        acquisition: ``logei`` (BoTorch's log-EI) or ``ei``.
        transform: ``log`` models log(objective) (loss curves span decades: pooled median
            0.0006 against 0.0013 without); ``none`` models it as it is.
        failures: How failed or diverged trials inform the search: a ``feasibility`` GP
            with constrained log-EI, ``exclude`` zones, or ``impute`` the worst value
            (8.8x and 1.9x the feasibility model's regret on cliff).
        kernel: ``matern`` (5/2) or ``rbf`` (not with a fidelity, whose kernel is Matern).
        feasibility_trend: The feasibility GP's linear mean in the learning rate: beyond
            a divergence it stays pessimistic (without it cliff 1.4x, wide 2.1x).
        min_distance: No proposal within this fraction of the range (decades on a log
            scale) of a trial: a rate is never evaluated twice.
        explore_after: Explore instead of refining by less than a worthwhile gain once
            the best has stalled for this many evaluations (``None``: never; without it
            plateau 11x).
        gap_radius: While the model only refines, evaluate the centre of the largest hole
            in the data when its radius (a fraction of the range over sqrt(d)) exceeds this
            (``None``: never; Forrester's p90 0.009 against 5.04, cliff 0.0025 against 0.0009).
        num_restarts: Restarts of the acquisition's maximisation (a step takes 0.07 s in
            1-D: ``python benchmarks/throughput.py``).
        raw_samples: Raw samples that seed the restarts.
    """

    acquisition: str = "logei"
    transform: str = "log"
    failures: str = "feasibility"
    kernel: str = "matern"
    feasibility_trend: bool = True
    min_distance: float = 0.01
    explore_after: int | None = 2
    gap_radius: float | None = 0.2
    num_restarts: int = 10
    raw_samples: int = 512

    def __post_init__(self) -> None:
        """Raise ``ValueError`` ``"<field>: ..."`` for a value out of its range or list."""
        check_choices(**{name: getattr(self, name) for name in CHOICES})
        checks = {
            "num_restarts": (self.num_restarts >= 1, "must be >= 1"),
            "raw_samples": (self.raw_samples >= self.num_restarts, "must be >= num_restarts"),
            "explore_after": (
                self.explore_after is None or self.explore_after >= 0,
                f"must be >= 0 or null/None, got {self.explore_after}",
            ),
            "gap_radius": (
                self.gap_radius is None or 0 < self.gap_radius < 1,
                f"must be in (0, 1) or null/None, got {self.gap_radius}",
            ),
            "min_distance": (
                0 <= self.min_distance < 1,
                f"must be in [0, 1), got {self.min_distance}",
            ),
        }
        for name, (good, message) in checks.items():
            if not good:
                raise ValueError(f"{name}: {message}")


SETTINGS = tuple(f.name for f in fields(TunerSettings))


def check_choices(**values: str) -> None:
    """Raise ``ValueError`` ``"<name>: unknown ..."`` for a value not in its list.

    Args:
        **values: ``acquisition``, ``transform``, ``failures`` and/or ``kernel``.
    """
    for name, value in values.items():
        if value not in CHOICES[name]:
            raise ValueError(
                f"{name}: unknown {name} {value!r}; allowed: {', '.join(CHOICES[name])}"
            )


# Median regret of ``python benchmarks/bo_regret.py`` (``--suite classic``, ``--suite multi``),
# with the value chosen against the alternative measured.
# Design: 2 Sobol points a parameter (a third in 1-D: cliff 2.6x the regret).
DESIGN_PER_PARAM = 2
# ... at most 2/5 of a known budget, never under d + 1 (3-D, budget 10: 0.0555 against 0.0746).
DESIGN_SHARE = Fraction(2, 5)  # exact: 0.4 * 15 in floats rounds up to 7
# Sobol points looked at per design step for one that no rule excludes.
DESIGN_LOOKAHEAD = 64
# log(y - shift) puts the lowest value 5% of the range above zero (forrester 0.0039 against
# 5.18 with a floor at 1e-6).
LOG_SHIFT_FRACTION = 0.05
# A gain under 3% (log scale) is not worth a trial (plateau 0.0020 against 0.0044 at 1%).
MIN_RELATIVE_GAIN = 0.03
# The exploration model's length-scale cap, x sqrt(d) (plateau p90 0.41 against 1.95 at 0.1).
EXPLORE_LENGTHSCALE = 0.05
# The gap step fires only while the proposal is this near the incumbent (Levy p90 0.008 against
# 0.11 without the condition).
REFINING_RADIUS = 0.1
# Scrambled Sobol candidates drawn to find the largest hole in the data.
GAP_CANDIDATES = 2048
# Model steps before the first gap step (six_hump_camel 0.32 against 0.41 after one).
GAP_AFTER_MODEL_STEPS = 2
# The budget's last evaluation refines (ablation boresnet_explore_to_end: pooled 0.0007).
FINAL_STEPS_WITHOUT_EXPLORING = 1
# Neighbourhood of a failure that ``failures="exclude"`` removes, in search coordinates.
EXCLUDE_RADIUS = 0.1
# After a divergence, exploration looks where P(diverge) >= this (momentum p90 0.16 against 0.38
# exploring every gap alike).
EDGE_OF_DIVERGENCE = 0.05
# A look elsewhere only where mean - 2 sd beats the incumbent (2-D momentum 0.049 against 0.071).
LOWER_BOUND_SD = 2.0
# Multi-fidelity (``bo_regret.py --fidelity --budgets 2,4``): a short run must shrink the
# full-length variance at its point by this share of a full run's, or it runs longer (pooled
# median at budget 4: 0.0024 against 0.0034 at 0.5 and 0.9).
MIN_INFORMATION_SHARE = 0.8
# Multi-fidelity: Sobol points per parameter at the shortest length before the model (pooled
# median at budget 4: 0.0024 against 0.0038 with 2 and with 5).
FIDELITY_DESIGN_PER_PARAM = 3
# Multi-fidelity: full-length evaluations that trained before a GP of them alone ranks the
# incumbent and picks each further full run's point (median regret at budget 10 against the
# joint GP's: pooled 0.0007 / 0.0021, CPU table 0.0015 / 0.0022; boresnet_mf_joint in
# bo_regret.py --fidelity, docs/benchmarks.md).
FULL_RANKING_MIN = 2
# Multi-fidelity: ... but only once one of them lies within this fraction of the range (over
# sqrt(d)) of the joint GP's best point (bo_regret.py --fidelity, budget 10: p90 of the 1-D
# generated families 0.020 -> 0.015, mf_plateau 0.78 -> 0.40; at 0.1 mf_plateau stays 0.78).
FULL_RANKING_COVER = 0.05
# Multi-fidelity: a full run the full runs' GP picks lies within this fraction of each range of
# their incumbent (unbounded, it spent full runs at bounds the short runs had ruled out).
# bo_regret.py --fidelity, budget 10: pooled 1-D p90 0.0060 -> 0.0029 (36 W / 26 L), 2-D 6 / 7.
FULL_RUN_TRUST = 0.1
# An incumbent this close to a bound (decades, or this fraction of a linear range) is at it.
BOUND_MARGIN = 0.1


def design_size(n_params: int, budget: int | None, n_init: int | None = None) -> int:
    """Sobol points before the model: ``n_init``, or 2 per parameter, within the budget.

    Without ``n_init``: ``DESIGN_PER_PARAM`` per parameter, but at most ``DESIGN_SHARE``
    of the budget (never fewer than ``n_params + 1``), and never more than the budget.

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
