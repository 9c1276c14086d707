"""The adapter between the application and the tuner: config and journal in, optimiser out.

The tuner sees only points, values and statuses (:mod:`boresnet.tuner`); this module
knows which config fields are its settings and how a journal replays into it.
"""

from __future__ import annotations

from collections.abc import Sequence

from boresnet.config.schema import Config
from boresnet.study.journal import TrialRecord
from boresnet.tuner import BayesianOptimizer, Fidelity, SearchSpace
from boresnet.tuner.defaults import SETTINGS


def search_space(config: Config) -> SearchSpace:
    """The tuner's space for ``config.search.params``."""
    return SearchSpace(config.search.params)


def fidelity_of(config: Config) -> Fidelity | None:
    """The tuner's lengths for ``config.search.fidelity`` (full: ``trainer.max_epochs``)."""
    f = config.search.fidelity
    return None if f is None else f.fidelity(config.trainer.max_epochs)


def tuner_point(config: Config, params: dict[str, float], length: float | None) -> dict:
    """A trial's point as the tuner sees it: with a fidelity, its length added (full: ``None``)."""
    fidelity = fidelity_of(config)
    if fidelity is None:
        return dict(params)
    return {**params, fidelity.name: fidelity.full if length is None else length}


def trial_point(config: Config, point: dict[str, float]) -> tuple[dict[str, float], float | None]:
    """A proposal as a trial runs it: the searched values, and its length (full: ``None``)."""
    fidelity = fidelity_of(config)
    if fidelity is None:
        return dict(point), None
    params = {k: v for k, v in point.items() if k != fidelity.name}
    length = fidelity.of(point)
    return params, None if length == fidelity.full else length


def build_optimizer(config: Config, records: Sequence[TrialRecord] = ()) -> BayesianOptimizer:
    """The optimiser a config describes, told every journal record in journal order.

    Told in order, the optimiser's ``i``-th observation is ``records[i]``: a position
    among its observations finds the record (and so the trial's index).
    """
    s = config.search
    fidelity = fidelity_of(config)
    opt = BayesianOptimizer(
        search_space(config),
        s.design_size if fidelity is None else s.n_init,
        seed=config.seed,
        budget=s.budget,
        fidelity=fidelity,
        **{name: getattr(s, name) for name in SETTINGS},
    )
    for r in records:
        opt.tell(tuner_point(config, r.params, r.length), r.objective, r.status)
    return opt
