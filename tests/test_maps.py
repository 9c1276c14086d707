"""The 2-D map of the posterior and acquisition (two searched parameters)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from proposal_scenarios import LR, MOMENTUM, valley

from boresnet.plots.maps import draw_maps
from boresnet.tuner import BayesianOptimizer, ParamSpec, Pending, SearchSpace


def two_d(points) -> BayesianOptimizer:
    space = SearchSpace([ParamSpec(**LR), ParamSpec(**MOMENTUM)])
    opt = BayesianOptimizer(space, seed=0, budget=10)
    for p in points:
        value, status = valley(p)
        opt.tell(p, value, status)
    return opt


def test_the_map_draws_mean_and_acquisition_with_every_trial():
    points = [
        {"lr": 0.01, "momentum": 0.5},
        {"lr": 0.5, "momentum": 0.9},  # diverges: effective rate 5 > 10**0.5
        {"lr": 0.05, "momentum": 0.8},
        {"lr": 0.002, "momentum": 0.95},
        {"lr": 0.1, "momentum": 0.3},
    ]
    opt = two_d(points)
    running = [Pending({"lr": 0.02, "momentum": 0.7}, "logei")]
    nxt = opt.ask(pending=running)
    fig = draw_maps(opt, nxt, running, title="Iteration 5")
    left, right = fig.axes[:2]
    assert left.get_title() == "posterior mean" and right.get_title() == "acquisition"
    assert len(fig.axes) == 4  # two maps, two colour bars
    labels = {t.get_text() for t in left.get_legend().get_texts()}
    assert labels == {"trial", "diverged/failed", "running", "incumbent", "next proposal"}
    assert left.get_xscale() == "log" and left.get_yscale() == "linear"
    assert left.get_xlim() == pytest.approx((LR["low"], LR["high"]))
    plt.close(fig)


def test_the_map_before_a_model_exists_and_outside_two_dimensions():
    opt = two_d([{"lr": 0.01, "momentum": 0.5}])
    fig = draw_maps(opt, None)
    assert "initial design" in fig.axes[0].texts[0].get_text()
    plt.close(fig)
    one_d = BayesianOptimizer(SearchSpace([ParamSpec(**LR)]), seed=0)
    with pytest.raises(ValueError, match="two searched parameters"):
        draw_maps(one_d, None)
