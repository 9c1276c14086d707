"""The adapter between the application and the tuner: config and journal in, optimiser out.

The tuner sees only points, values and statuses (:mod:`boresnet.tuner`); this module
knows which config fields are its settings and how a journal replays into it.
"""

from __future__ import annotations

from collections.abc import Sequence

from boresnet.config.schema import Config
from boresnet.study.journal import TrialRecord
from boresnet.tuner import BayesianOptimizer, SearchSpace
from boresnet.tuner.defaults import SETTINGS


def search_space(config: Config) -> SearchSpace:
    """The tuner's space for ``config.search.params``."""
    return SearchSpace(config.search.params)


def build_optimizer(config: Config, records: Sequence[TrialRecord] = ()) -> BayesianOptimizer:
    """The optimiser a config describes, told every journal record in journal order.

    Told in order, the optimiser's ``i``-th observation is ``records[i]``: a position
    among its observations finds the record (and so the trial's index).
    """
    s = config.search
    opt = BayesianOptimizer(
        search_space(config),
        s.design_size,
        seed=config.seed,
        budget=s.budget,
        **{name: getattr(s, name) for name in SETTINGS},
    )
    for r in records:
        opt.tell(r.params, r.objective, r.status)
    return opt
