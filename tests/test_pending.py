"""Proposals while trials run: the pending points reach the acquisition and the rules."""

from __future__ import annotations

import math
import random

import pytest
import torch
from botorch.acquisition.logei import qLogExpectedImprovement
from proposal_scenarios import LR, MOMENTUM, cliff, plateau, valley

from boresnet.tuner import BayesianOptimizer, ParamSpec, Pending, SearchSpace


def optimizer(params=(LR,), budget: int = 10, **kwargs) -> BayesianOptimizer:
    """An optimiser over ``params`` with the config's defaults."""
    space = SearchSpace([ParamSpec(**p) for p in params])
    return BayesianOptimizer(space, seed=3, budget=budget, **kwargs)


def told(opt: BayesianOptimizer, landscape, points: list[dict[str, float]]) -> None:
    """Tell ``opt`` the landscape's value at each point."""
    for p in points:
        value, status = landscape(p)
        opt.tell(p, value, status)


def test_pending_points_reach_the_acquisition_as_x_pending():
    opt = optimizer()
    told(opt, cliff, [{"lr": 0.01}, {"lr": 0.3}, {"lr": 3.0}])
    pending = opt.pending_coords([Pending({"lr": 0.5}, "logei")])
    acq = opt.acquisition_function(pending=pending)
    assert isinstance(acq, qLogExpectedImprovement)
    assert torch.equal(acq.X_pending, pending)
    # Nothing pending: the analytic acquisition, as before this argument existed.
    assert not isinstance(opt.acquisition_function(), qLogExpectedImprovement)


def test_a_proposal_goes_elsewhere_than_a_running_one():
    opt = optimizer()
    told(opt, cliff, [{"lr": 0.01}, {"lr": 0.3}, {"lr": 3.0}, {"lr": 0.5}])
    alone = opt.ask()
    beside = opt.ask(pending=[Pending(alone, opt.last_proposal_kind)])
    gap = abs(math.log10(beside["lr"]) - math.log10(alone["lr"]))
    assert gap > opt.min_distance
    # The cached sequential proposal is untouched by a proposal with pending points.
    assert opt.ask() == alone


def test_the_design_goes_on_past_pending_points():
    opt = optimizer(params=(LR, MOMENTUM))
    first = opt.ask()
    second = opt.ask(pending=[Pending(first, "sobol")])
    third = opt.ask(pending=[Pending(first, "sobol"), Pending(second, "sobol")])
    assert opt.last_proposal_kind == "sobol"
    assert len({tuple(p.values()) for p in (first, second, third)}) == 3


def test_the_last_evaluation_counts_pending_proposals():
    opt = optimizer(budget=6, explore_after=1)
    told(opt, plateau, [{"lr": 0.002}, {"lr": 5.0}, {"lr": 0.1}, {"lr": 1.0}])
    # Four told and one running: the sixth proposal is the budget's last, which refines.
    opt.ask(pending=[Pending({"lr": 0.03}, "logei")])
    assert opt.last_proposal_kind in ("logei", "logei+feasibility")


@pytest.mark.parametrize("q,landscape,params", [(4, cliff, (LR,)), (3, valley, (LR, MOMENTUM))])
def test_asynchronous_loop_obeys_every_rule(q, landscape, params):
    """A closed loop with q trials in flight, finishing in a random order."""
    opt = optimizer(params=params, budget=10)
    rng = random.Random(q)
    running: list[Pending] = []
    proposed: list[dict[str, float]] = []
    while len(opt.observations) < opt.budget:
        while len(running) < q and len(opt.observations) + len(running) < opt.budget:
            params_ = opt.ask(pending=list(running))
            kind = opt.last_proposal_kind
            # One look elsewhere of each kind at a time.
            assert not (kind in ("explore", "gap") and kind in {p.kind for p in running})
            running.append(Pending(params_, kind))
            proposed.append(params_)
        done = running.pop(rng.randrange(len(running)))
        value, status = landscape(done.params)
        opt.tell(done.params, value, status)
    coords = torch.stack([opt.space.to_coords(p) for p in proposed])
    radius = opt.exclusions().radius()
    for i in range(len(coords)):
        close = ((coords[i + 1 :] - coords[i]).abs() <= radius).all(-1)
        assert not close.any(), f"proposal {i} has a neighbour within min_distance"
    best = opt.best()
    assert best is not None and best.ok
