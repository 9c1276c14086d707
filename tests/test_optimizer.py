import math

import matplotlib
import numpy as np
import pytest
import torch

from boresnet.config import ParamConfig
from boresnet.figures import draw_confusion, draw_convergence, draw_iteration
from boresnet.optimizer import BayesianOptimizer
from boresnet.space import SearchSpace

LR = ParamConfig("lr", 1e-3, 10.0, "log")
MOM = ParamConfig("momentum", 0.0, 0.99, "linear")


def bowl_1d(p):  # minimum 0 at lr = 10**-0.7, asymmetric like a real lr curve
    x = math.log10(p["lr"]) + 0.7
    return x * x + 0.3 * max(x, 0) ** 3


def bowl_2d(p):  # minimum 0 at lr = 10**-1, momentum = 0.6
    return (math.log10(p["lr"]) + 1) ** 2 + 4 * (p["momentum"] - 0.6) ** 2


def random_search(f, space, budget, seed):
    g = torch.Generator().manual_seed(seed)
    return min(
        f(space.from_unit(torch.rand(space.dim, generator=g, dtype=torch.double)))
        for _ in range(budget)
    )


def test_space_round_trip():
    space = SearchSpace([LR, MOM])
    x = space.to_coords({"lr": 0.01, "momentum": 0.5})
    assert x.tolist() == pytest.approx([-2.0, 0.5])
    assert space.from_coords(x) == pytest.approx({"lr": 0.01, "momentum": 0.5})
    assert space.bounds().flatten().tolist() == pytest.approx([-3, 0, 1, 0.99])


def test_finds_1d_minimum_and_beats_random_search():
    space = SearchSpace([LR])
    bo, rs = [], []
    for seed in range(5):
        best = BayesianOptimizer(space, seed=seed).run(bowl_1d, 10)
        assert abs(math.log10(best.params["lr"]) + 0.7) < 0.1, (seed, best)
        bo.append(best.value)
        rs.append(random_search(bowl_1d, space, 10, seed))
    assert np.mean(bo) < np.mean(rs) / 2


def test_finds_2d_minimum():
    space = SearchSpace([LR, MOM])
    for seed in range(2):
        best = BayesianOptimizer(space, n_init=4, seed=seed).run(bowl_2d, 20)
        assert best.value < 0.02, (seed, best)


def test_same_seed_same_proposals_different_seed_different():
    space = SearchSpace([LR])

    def proposals(seed):
        opt = BayesianOptimizer(space, seed=seed)
        out = []
        for _ in range(5):
            p = opt.ask()
            out.append(p["lr"])
            opt.tell(p, bowl_1d(p))
        return out

    assert proposals(3) == proposals(3)
    assert proposals(3)[:2] != proposals(4)[:2]


def test_failures_are_imputed_and_not_reproposed():
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0)
    opt.tell({"lr": 0.1}, 0.3)
    opt.tell({"lr": 0.01}, 0.9)
    opt.tell({"lr": 8.0}, float("nan"))
    opt.tell({"lr": 5.0}, None, "failed")
    assert [o.status for o in opt.observations] == ["ok", "ok", "diverged", "failed"]
    X, Y = opt.train_data()
    assert torch.isfinite(Y).all() and len(Y) == 4
    assert Y[2:].flatten().tolist() == [0.9, 0.9]  # worst finite value
    for _ in range(3):
        p = opt.ask()
        assert abs(math.log10(p["lr"]) - math.log10(8.0)) > 1e-3
        opt.tell(p, bowl_1d(p))
    assert opt.best().ok


def test_all_failures_fall_back_to_space_filling():
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0)
    seen = []
    for _ in range(4):
        p = opt.ask()
        assert opt.last_proposal_kind == "sobol"
        assert p["lr"] not in seen
        seen.append(p["lr"])
        opt.tell(p, float("inf"))
    assert opt.best() is None and opt.imputed_value() is None


def test_initial_design_then_acquisition():
    opt = BayesianOptimizer(SearchSpace([LR]), n_init=3, seed=1)
    kinds = []
    for _ in range(5):
        p = opt.ask()
        kinds.append(opt.last_proposal_kind)
        opt.tell(p, bowl_1d(p))
    assert kinds == ["sobol"] * 3 + ["logei"] * 2


@pytest.mark.parametrize("params", [[LR], [LR, MOM]])
def test_iteration_figure(params):
    space = SearchSpace(params)
    opt = BayesianOptimizer(space, n_init=2, seed=0)
    f = bowl_1d if len(params) == 1 else bowl_2d
    for _ in range(4):
        p = opt.ask()
        opt.tell(p, f(p))
    opt.tell(opt.ask(), None, "diverged")
    nxt = opt.ask()
    fig = draw_iteration(opt, nxt, title="t")
    assert matplotlib.get_backend().lower() == "agg"
    assert len(fig.axes) == 2 * len(params)
    top = fig.axes[0]
    assert top.get_xscale() == "log"
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert {"GP mean", "95% band", "observation", "incumbent"} <= set(labels)
    assert any("diverged" in label for label in labels)
    # The next proposal is drawn as a vertical line at its learning rate.
    xs = [line.get_xdata()[0] for line in top.get_lines() if len(line.get_xdata()) == 2]
    assert any(x == pytest.approx(nxt["lr"]) for x in xs)


def test_summary_figures():
    fig = draw_convergence([0.5, None, 0.3, 0.4], ["ok", "diverged", "ok", "ok"])
    step = [line for line in fig.axes[0].get_lines() if line.get_label() == "best so far"][0]
    assert list(step.get_ydata())[-1] == 0.3
    fig = draw_confusion(np.eye(10) * 5, 1.0)
    assert "1.0000" in fig.axes[0].get_title()


def test_log_transform_models_log_objective_and_plots_in_objective_units():
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0, transform="log")
    best = opt.run(lambda p: 0.1 + bowl_1d(p), 10)
    assert abs(math.log10(best.params["lr"]) + 0.7) < 0.15, best
    _, Y = opt.train_data()
    assert float(Y.min()) == pytest.approx(math.log(best.value))
    mid, low, high = opt.band(space.to_coords(best.params).unsqueeze(0))
    assert float(low) < float(mid) < float(high) and float(low) > 0
    fig = draw_iteration(opt, opt.ask())
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError):
        BayesianOptimizer(space, transform="sqrt")
