import math
import warnings

import numpy as np
import pytest
import torch

from boresnet.config.schema import Config, ParamConfig, SearchConfig
from boresnet.plots.iteration import draw_iteration, iteration_title
from boresnet.plots.summary import draw_confusion, draw_convergence
from boresnet.study.adapter import build_optimizer
from boresnet.tuner import BayesianOptimizer, SearchExhausted
from boresnet.tuner.defaults import EDGE_OF_DIVERGENCE, EXPLORE_LENGTHSCALE
from boresnet.tuner.exclusions import open_to_improvement
from boresnet.tuner.observations import imputed_value
from boresnet.tuner.rules import gap_point
from boresnet.tuner.space import ParamSpec, SearchSpace

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


@pytest.mark.parametrize(
    ("low", "high", "scale", "message"),
    [
        (1.0, 0.1, "log", "needs finite low < high"),
        (0.1, math.inf, "log", "needs finite low < high"),
        (0.0, 1.0, "log", "a log-scale parameter needs low > 0"),
        (0.1, 1.0, "exp", "scale must be log or linear"),
    ],
)
def test_a_parameter_without_a_valid_range_is_refused_naming_it(low, high, scale, message):
    with pytest.raises(ValueError, match=f"lr: {message}"):
        ParamSpec("lr", low, high, scale)


def test_a_point_read_back_must_be_one_of_the_space():
    space = SearchSpace([LR, MOM])
    space.check({"lr": 0.01, "momentum": 0.5})
    with pytest.raises(KeyError, match="momentum"):
        space.to_coords({"lr": 0.01})
    for bad, message in (
        ({"lr": 0.01}, "not the searched"),
        ({"lr": True, "momentum": 0.5}, "not a number"),
        ({"lr": "0.01", "momentum": 0.5}, "not a number"),
        ({"lr": math.nan, "momentum": 0.5}, "not a valid log value"),
        ({"lr": -0.01, "momentum": 0.5}, "not a valid log value"),
        ({"lr": 100.0, "momentum": 0.5}, "outside"),
        ({"lr": 0.01, "momentum": 1.5}, "outside"),
    ):
        with pytest.raises(ValueError, match=message):
            space.check(bad)


@pytest.mark.slow
def test_finds_1d_minimum_and_beats_random_search():
    space = SearchSpace([LR])
    bo, rs = [], []
    for seed in range(5):
        best = BayesianOptimizer(space, seed=seed).run(bowl_1d, 10)
        assert abs(math.log10(best.params["lr"]) + 0.7) < 0.1, (seed, best)
        bo.append(best.value)
        rs.append(random_search(bowl_1d, space, 10, seed))
    assert np.mean(bo) < np.mean(rs) / 2


@pytest.mark.slow
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


def test_proposal_does_not_depend_on_the_global_random_state():
    # A resumed study (a fresh process) must propose what the unbroken one would have:
    # the GPs (the feasibility GP's LinearMean draws random initial weights) are built
    # under the optimiser's own seed, not whatever the process drew before.
    def proposal(draws):
        torch.manual_seed(1234)
        torch.randn(draws)
        opt = BayesianOptimizer(SearchSpace([LR]), seed=0)
        for x in (-2.5, -1.0, -0.2, 0.1):
            opt.tell({"lr": 10**x}, cliff_1d({"lr": 10**x}))
        opt.tell({"lr": 10**0.6}, math.nan)
        return opt.ask()["lr"]

    assert proposal(0) == proposal(5) == proposal(17)


def test_failures_are_imputed_and_not_reproposed():
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0, failures="impute", transform="none")
    opt.tell({"lr": 0.1}, 0.3)
    opt.tell({"lr": 0.01}, 0.9)
    opt.tell({"lr": 8.0}, float("nan"))
    opt.tell({"lr": 5.0}, None, "failed")
    assert [o.status for o in opt.observations] == ["ok", "ok", "diverged", "failed"]
    Y = opt.surrogate().Y
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
    assert opt.best() is None and imputed_value(opt.observations) is None


def test_initial_design_then_acquisition():
    opt = BayesianOptimizer(SearchSpace([LR]), n_init=3, seed=1)
    kinds = []
    for _ in range(5):
        p = opt.ask()
        kinds.append(opt.last_proposal_kind)
        opt.tell(p, bowl_1d(p))
    assert kinds[:3] == ["sobol"] * 3
    assert set(kinds[3:]) <= {"logei", "explore"} and "logei" in kinds


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
    # Two panels per parameter, and the probability of divergence on a twin axis.
    assert len(fig.axes) == 3 * len(params)
    assert any(ax.get_ylabel() == "P(diverge)" for ax in fig.axes)
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
    Y = opt.surrogate().Y
    assert float(Y.min()) == pytest.approx(math.log(best.value))
    mid, low, high = opt.surrogate().band(space.to_coords(best.params).unsqueeze(0))
    assert float(low) < float(mid) < float(high) and float(low) > 0
    fig = draw_iteration(opt, opt.ask())
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError):
        BayesianOptimizer(space, transform="sqrt")


def cliff_1d(p):  # optimum at the cliff's foot: lr = 10**0.3, NaN above 10**0.45
    x = math.log10(p["lr"])
    return math.nan if x > 0.45 else 0.1 + 0.5 * (x - 0.3) ** 2 + 0.4 * max(0.3 - x, 0) ** 1


def test_log_transform_shifts_for_results_at_or_below_zero():
    """A validation error of 0 or a negative objective keeps its order and its distances."""
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0, transform="log")
    values = [3.0, -1.0, 0.0, -6.0, 0.5]
    for lr, value in zip([1e-3, 1e-2, 0.1, 0.3, 0.9], values, strict=True):
        opt.tell({"lr": lr}, value)
    assert opt.surrogate().shift == pytest.approx(-6.0 - 0.05 * 9.0)
    Y = opt.surrogate().Y
    # The old floor at 1e-6 mapped -1, 0 and -6 to one value.
    assert np.argsort(Y.squeeze(-1).numpy()).tolist() == np.argsort(values).tolist()
    mid, low, high = opt.surrogate().band(torch.stack([space.to_coords({"lr": 0.3})]))
    assert float(low) < -6.0 < float(high) and abs(float(mid) + 6.0) < 0.5
    assert opt.best().value == -6.0
    fig = draw_iteration(opt, opt.ask())
    assert fig.axes[0].get_yscale() == "linear"  # a log axis cannot show -6
    positive = BayesianOptimizer(space, transform="log")
    positive.tell({"lr": 0.1}, 0.2)
    assert positive.surrogate().shift == 0.0  # plain log(loss) for positive results


@pytest.mark.parametrize("seed", range(3))
def test_after_a_divergence_above_the_optimum_the_search_probes_just_below_it(seed):
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=seed)
    for x in (-2.5, -1.0, -0.2, 0.1):
        opt.tell({"lr": 10**x}, cliff_1d({"lr": 10**x}))
    opt.tell({"lr": 10**0.6}, math.nan)  # diverged just above the optimum
    failure = 0.6
    below = []
    for _ in range(3):
        p = opt.ask()
        x = math.log10(p["lr"])
        below.append(failure - 0.5 <= x < failure)
        assert x < failure, "a proposal at or beyond the divergence"
        opt.tell(p, cliff_1d(p))
    assert any(below), [round(math.log10(o.params["lr"]), 2) for o in opt.observations]
    # The divergence did not become "the loss is bad from here on": the GP only saw successes.
    assert len(opt.surrogate().X) == sum(o.ok for o in opt.observations)
    prob = opt.surrogate().failure_probability(
        torch.tensor([[failure], [-2.5]], dtype=torch.double)
    )
    assert float(prob[0]) > 0.5 > float(prob[1])


def test_no_proposal_at_a_learning_rate_above_one_that_diverged():
    space = SearchSpace([LR, ParamConfig("momentum", 0.0, 0.99, "linear")])
    opt = BayesianOptimizer(space, seed=0)
    opt.tell({"lr": 4.0, "momentum": 0.9}, math.nan)
    above = torch.stack(
        [
            space.to_coords({"lr": lr, "momentum": m})
            for lr, m in [(4.0, 0.9), (9.0, 0.9), (9.0, 0.5)]
        ]
    )
    # Above it at the same momentum: excluded; at another momentum: not known.
    assert opt.exclusions().mask(above).tolist() == [True, True, False]
    one_d = BayesianOptimizer(SearchSpace([LR]), seed=0)
    for x in (-2.5, -1.0, -0.2, 0.1):
        one_d.tell({"lr": 10**x}, cliff_1d({"lr": 10**x}))
    one_d.tell({"lr": 10**0.6}, math.nan)
    for _ in range(5):
        p = one_d.ask()
        assert math.log10(p["lr"]) < 0.6, p  # the log model once sent one to lr = 10
        one_d.tell(p, cliff_1d(p))
    # Diverged at the lowest rate: every rate is above it, so the rule steps aside for
    # that divergence alone; the one at lr = 1 still rules out every rate from 1 up.
    # Without a feasibility model (exclude) nothing else keeps the search below lr = 1,
    # while the loss falls toward it.
    for failures in ("feasibility", "exclude"):
        low = BayesianOptimizer(SearchSpace([LR]), seed=0, failures=failures)
        low.tell({"lr": LR.low}, math.nan)
        for lr, loss in ((0.01, 1.0), (0.1, 0.5), (0.4, 0.3)):
            low.tell({"lr": lr}, loss)
        low.tell({"lr": 1.0}, math.nan)
        for _ in range(4):
            p = low.ask()
            assert LR.low < p["lr"] < 1.0, (failures, low.last_proposal_kind, p)
            low.tell(p, 0.3 - 0.1 * math.log10(p["lr"] / 0.4))


def test_exploration_after_a_divergence_looks_where_divergence_is_possible():
    # A flat plateau at chance, and one divergence: the widest gap, far below it, is a
    # region the feasibility model is sure trains; exploration goes toward the failure.
    opt = BayesianOptimizer(SearchSpace([LR]), seed=0)
    for x in (-3.0, -2.9, -1.2, -0.9, -0.6, -0.3):
        opt.tell({"lr": 10**x}, 2.30 + 0.005 * math.sin(7 * x))
    opt.tell({"lr": 10**0.2}, math.nan)
    point = opt.exploration_point()
    prob = float(opt.surrogate().failure_probability(point.unsqueeze(0)))
    assert EDGE_OF_DIVERGENCE - 1e-6 <= prob < 0.5  # the previous rule chose P = 0.01
    assert float(point[0]) < 0.2


def test_imputation_with_one_success_fits_no_gp_to_constant_data():
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0, failures="impute")
    opt.tell({"lr": 0.01}, 0.3)
    opt.tell({"lr": 5.0}, math.nan)
    opt.tell({"lr": 8.0}, None, "failed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BoTorch's InputDataWarning for std = 0 would raise
        surrogate = opt.surrogate()
        assert surrogate.objective is None
        p = opt.ask()
    assert len(surrogate.Y) == 3 and float(surrogate.Y.std()) < 1e-12  # all at one value
    assert opt.last_proposal_kind == "sobol"
    x = math.log10(p["lr"])
    assert all(abs(x - math.log10(o.params["lr"])) > 0.01 for o in opt.observations)


def test_no_point_is_evaluated_twice_within_min_distance():
    space = SearchSpace([ParamConfig("lr", 1e-4, 1.0, "log")])
    opt = BayesianOptimizer(space, seed=0)
    # The loss keeps falling to the upper bound: EI wants lr = 1 again and again.
    for _ in range(8):
        p = opt.ask()
        opt.tell(p, 1.0 - 0.2 * math.log10(p["lr"] * 1e4))
    xs = sorted(math.log10(o.params["lr"]) for o in opt.observations)
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) > 0.01
    assert opt.incumbent_at_bound() == {"lr": "upper"}


def test_incumbent_inside_the_range_is_not_at_a_bound():
    opt = BayesianOptimizer(SearchSpace([LR]), seed=0)
    opt.run(bowl_1d, 8)
    assert opt.incumbent_at_bound() == {}


def test_incumbent_is_lowest_posterior_mean_among_evaluated_points():
    space = SearchSpace([LR])
    opt = BayesianOptimizer(space, seed=0, transform="none")
    rng = np.random.default_rng(2)  # a draw where noise makes the two rules differ
    # Seven points near the optimum, where differences are below the noise.
    for x in [-2.5, -2.0, -1.5, *np.linspace(-1.3, -0.7, 7), 0.0]:
        opt.tell({"lr": 10**x}, (x + 1) ** 2 + 0.05 * rng.standard_normal())
    opt.tell({"lr": 0.02}, None, "failed")
    ok = [i for i, o in enumerate(opt.observations) if o.ok]
    mean, _ = opt.surrogate().predict(
        torch.stack([space.to_coords(opt.observations[i].params) for i in ok])
    )
    assert opt.best_index() == ok[int(torch.argmin(mean))]
    observed = min(ok, key=lambda i: opt.observations[i].value)
    assert opt.best_index() != observed
    # The lowest posterior mean is nearer the true optimum (-1) than the luckiest draw.
    chosen = math.log10(opt.best().params["lr"])
    assert abs(chosen + 1) < abs(math.log10(opt.observations[observed].params["lr"]) + 1)


def test_exploration_expects_the_best_value_where_nothing_was_seen():
    # A plateau with a faint drift, and one good point. The exploration's model is the
    # fitted GP with its prior mean moved to the best value seen: beyond the data it
    # expects better than the honest model does, and the honest model is untouched.
    opt = BayesianOptimizer(SearchSpace([LR]), seed=0)
    for x, y in ((-2.8, 2.05), (-2.4, 2.04), (-2.0, 2.03), (-1.6, 2.02), (0.5, 0.3)):
        opt.tell({"lr": 10**x}, y)
    honest = opt.surrogate().objective
    # The lower bound, beyond the plateau's end, and the middle of the unmeasured gap.
    edges = torch.tensor([[-3.0], [-0.55]], dtype=torch.double)
    before = opt.surrogate().predict(edges)[0]
    optimistic = opt.acquisition_function(optimistic=True).model
    assert optimistic is not honest
    best = float(honest.train_targets.min())
    assert float(optimistic.mean_module.constant.detach()) == pytest.approx(best)
    assert float(honest.mean_module.constant.detach()) > best + 0.5
    with torch.no_grad():
        assert (optimistic.posterior(edges).mean.squeeze(-1) < before).all()
    assert torch.equal(opt.surrogate().predict(edges)[0], before)
    # ... and it assumes short features: it does not trust a long fitted length-scale.
    assert float(optimistic.covar_module.lengthscale.detach().max()) <= EXPLORE_LENGTHSCALE + 1e-12
    assert float(honest.covar_module.lengthscale.detach().max()) > EXPLORE_LENGTHSCALE
    x = float(opt.exploration_point()[0])
    assert min(abs(x - math.log10(o.params["lr"])) for o in opt.observations) > 0.1


def test_exploration_skips_corners_the_honest_gp_rules_out():
    # Ten trials of the measured lr x momentum surface (benchmarks/data/
    # lr_momentum_table.csv): a valley near lr = 0.7, and lr = 0.003 already at chance.
    # The optimistic model's short length-scale left the corner lr = 0.001, momentum =
    # 0.97 open (it picked it); the honest GP's lower bound there is above the best.
    space = SearchSpace([LR, ParamConfig("momentum", 0.0, 0.97, "linear")])
    opt = BayesianOptimizer(space, seed=0, budget=30)
    for x, m, y in (
        (-1.1, 0.57, 0.904), (-0.68, 0.04, 0.835), (0.8, 0.84, 1.455), (-2.52, 0.25, 2.286),
        (-0.56, 0.61, 0.222), (-0.38, 0.64, 0.144), (-0.28, 0.8, 0.11), (-0.29, 0.97, 0.141),
        (-0.19, 0.33, 0.189), (-0.14, 0.74, 0.104),
    ):  # fmt: skip
        opt.tell({"lr": 10**x, "momentum": m}, y)
    point = opt.exploration_point()
    assert bool(open_to_improvement(opt.surrogate(), point.unsqueeze(0)))
    assert float(point[0]) > -2.0


@pytest.mark.parametrize("seed", range(3))
def test_a_stalled_search_on_a_plateau_looks_into_its_widest_gap(seed):
    # A plateau drifting faintly down to the left, measured on both sides of a
    # two-decade gap where a narrow basin could hide. Refining the drift could only
    # confirm what the GP knows: the step explores, and into the gap.
    opt = BayesianOptimizer(SearchSpace([LR]), seed=seed, transform="log")
    rng = np.random.default_rng(seed)
    for x in (-3.0, -2.6, -2.2, -1.8, 0.4, 0.7, 1.0):
        opt.tell({"lr": 10**x}, 2.0 + 0.01 * (x + 3) + 0.005 * rng.standard_normal())
    x = math.log10(opt.ask()["lr"])
    assert opt.last_proposal_kind == "explore"
    assert -1.6 < x < 0.2, x


def test_initial_design_is_two_points_per_searched_parameter_within_the_budget():
    one, two = [ParamConfig("lr", 1e-3, 10.0, "log")], [LR, MOM]
    three = [*two, ParamConfig("weight_decay", 1e-6, 1e-2, "log")]
    assert SearchConfig(params=one).design_size == 2
    assert SearchConfig(params=one, budget=3).design_size == 2
    assert SearchConfig(params=two).design_size == 4
    assert SearchConfig(params=two, budget=3).design_size == 3  # never beyond the budget
    assert SearchConfig(params=two, n_init=1).design_size == 1  # an explicit size wins
    # At most 40% of the budget, never fewer than a simplex (parameters + 1).
    assert SearchConfig(params=three, budget=10).design_size == 4
    assert SearchConfig(params=three, budget=15).design_size == 6  # 0.4 * 15 exactly
    assert SearchConfig(params=three, budget=20).design_size == 6
    assert SearchConfig(params=three, budget=5).design_size == 4
    opt = build_optimizer(Config(search=SearchConfig(params=two)))
    assert opt.n_init == 4


def forrester(p):  # global minimum -6.02 at lr = 10**-0.21; a local one, -0.99, at 10**-3.29
    u = (math.log10(p["lr"]) + 4) / 5
    return (6 * u - 2) ** 2 * math.sin(12 * u - 4)


@pytest.mark.parametrize("seed", range(3))
def test_a_crawl_toward_one_bound_looks_into_the_other_half(seed):
    # Every step improves toward the local minimum on the left, so the search never
    # stalls; the right half of the range, where the global minimum is, is unmeasured.
    space = SearchSpace([ParamConfig("lr", 1e-4, 10.0, "log")])
    crawl = (-1.62, -1.20, -1.87, -1.98)
    for gap_radius in (None, SearchConfig.gap_radius):
        opt = BayesianOptimizer(space, seed=seed, gap_radius=gap_radius)
        for x in crawl:
            opt.tell({"lr": 10**x}, forrester({"lr": 10**x}))
        x = math.log10(opt.ask()["lr"])
        if gap_radius is None:  # the model alone refines the incumbent
            assert abs(x - crawl[-1]) < 0.5, x
        else:  # the gap step: the centre of the unmeasured right half
            assert opt.last_proposal_kind == "gap"
            assert -0.6 < x < 0.4, x


def test_the_last_evaluation_of_the_budget_refines_instead_of_looking_elsewhere():
    # The crawl above, one evaluation left: a look into the other half could not be
    # followed up, so the model's own choice (next to the incumbent) stands; one more
    # evaluation left, the gap step still fires.
    space = SearchSpace([ParamConfig("lr", 1e-4, 10.0, "log")])
    crawl = (-1.62, -1.20, -1.87, -1.98)
    for budget, kind in ((len(crawl) + 1, "logei"), (len(crawl) + 2, "gap")):
        opt = BayesianOptimizer(space, seed=0, budget=budget)
        for x in crawl:
            opt.tell({"lr": 10**x}, forrester({"lr": 10**x}))
        x = math.log10(opt.ask()["lr"])
        assert opt.last_proposal_kind == kind, (budget, x)
        if kind == "logei":
            assert abs(x - crawl[-1]) < 0.5, x


def test_a_stalled_study_explores_but_not_at_its_last_evaluation():
    # A flat plateau measured at six points: the best has stalled and the model can
    # only confirm it, so the step explores; as the budget's last, it does not.
    space = SearchSpace([LR])
    plateau = {-3.5: 2.2, -2.0: 2.21, 0.5: 2.19, -1.0: 2.2, -2.8: 2.21, 0.0: 2.2}
    kinds = {}
    for budget in (len(plateau) + 1, len(plateau) + 3):
        opt = BayesianOptimizer(space, seed=0, budget=budget)
        for x, y in plateau.items():
            opt.tell({"lr": 10**x}, y)
        opt.ask()
        kinds[budget] = opt.last_proposal_kind
    assert kinds == {len(plateau) + 1: "logei", len(plateau) + 3: "explore"}, kinds
    # A proposal asked before run() was told the budget is not reused by it.
    opt = BayesianOptimizer(space, seed=0)
    for x, y in plateau.items():
        opt.tell({"lr": 10**x}, y)
    opt.ask()
    assert opt.last_proposal_kind == "explore"
    opt.run(lambda params: 2.2, len(plateau) + 1)
    assert opt.last_proposal_kind == "logei"


def test_the_gap_step_keeps_out_of_holes_the_gp_rules_out():
    # A basin measured closely on the left, a rise to a chance-level plateau, and one
    # hole between two plateau points far worse than the best: the honest GP rules the
    # hole out, so it is no gap worth a trial.
    opt = BayesianOptimizer(SearchSpace([LR]), seed=0)
    basin = {-3.0: 0.3, -2.8: 0.15, -2.6: 0.1, -2.4: 0.12, -2.2: 0.2, -1.8: 0.8, -1.4: 2.0}
    for x, y in {**basin, 1.0: 2.0}.items():
        opt.tell({"lr": 10**x}, y)
    centre, radius = gap_point(opt.space, opt.exclusions(), opt.surrogate(), opt.seed)
    assert radius < SearchConfig.gap_radius, (float(centre[0]), radius)


def test_the_iteration_title_says_why_the_next_point_is_where_it_is():
    nxt = {"lr": 0.1}
    assert "exploring" in iteration_title(5, 10, nxt, "explore")
    assert "largest unexplored hole" in iteration_title(5, 10, nxt, "gap")
    assert "\n" not in iteration_title(5, 10, nxt, "logei")
    assert "last evaluation" in iteration_title(9, 10, nxt, "logei+feasibility")
    assert "budget spent" in iteration_title(10, 10, None, None)
    assert "range is used up" in iteration_title(4, 10, None, "exhausted")


def test_a_range_used_up_raises_from_ask_and_ends_run_early():
    space = SearchSpace([ParamConfig("lr", 0.1, 0.105, "log")])
    opt = BayesianOptimizer(space, seed=0)
    with pytest.warns(UserWarning, match="stopping after"):
        best = opt.run(bowl_1d, 10)
    assert 2 <= len(opt.observations) < 10 and best is not None
    with pytest.raises(SearchExhausted):
        opt.ask()
    xs = sorted(math.log10(o.params["lr"]) for o in opt.observations)
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) > 0.01


def test_incumbent_at_bound_needs_a_gp_and_names_every_parameter():
    space = SearchSpace([LR, MOM])
    lone = BayesianOptimizer(space, seed=0)
    lone.tell({"lr": LR.high, "momentum": MOM.high}, 0.1)  # one success: no GP
    assert lone.surrogate().objective is None and lone.incumbent_at_bound() == {}
    # The loss falls toward both upper bounds: both parameters are reported, each side.
    opt = BayesianOptimizer(space, seed=0)
    rng = np.random.default_rng(0)
    for u in [*rng.random((8, 2)), (1.0, 1.0), (0.95, 1.0), (1.0, 0.93)]:
        p = space.from_unit(torch.tensor(u, dtype=torch.double))
        opt.tell(p, 2.0 - math.log10(p["lr"]) * 0.3 - p["momentum"])
    assert opt.incumbent_at_bound() == {"lr": "upper", "momentum": "upper"}


def test_the_feasibility_trend_is_in_the_learning_rate_alone():
    # One divergence at a high rate and a high momentum: the prior mean of the
    # feasibility GP says "lower the rate", and nothing about momentum.
    space = SearchSpace([LR, MOM])
    opt = BayesianOptimizer(space, seed=0)
    told = ((0.01, 0.9, "ok"), (0.1, 0.0, "ok"), (0.03, 0.5, "ok"), (3.0, 0.95, "diverged"))
    for lr, m, status in told:
        opt.tell({"lr": lr, "momentum": m}, 0.5 if status == "ok" else None, status)
    model = opt.surrogate().feasibility
    unit = torch.tensor([[0.5, 0.0], [0.5, 1.0], [0.9, 0.0]], dtype=torch.double)
    mean = model.mean_module(unit).detach()
    assert mean[0] == mean[1]  # momentum: no trend
    assert mean[2] < mean[0]  # a higher rate: less likely to train
    # Without a searched lr the trend is linear in every parameter.
    alone = BayesianOptimizer(SearchSpace([MOM, ParamConfig("weight_decay", 1e-6, 1e-2, "log")]))
    for m, wd, status in ((0.1, 1e-5, "ok"), (0.5, 1e-4, "ok"), (0.99, 1e-3, "diverged")):
        alone.tell({"momentum": m, "weight_decay": wd}, 0.5 if status == "ok" else None, status)
    weights = alone.surrogate().feasibility.mean_module.weights
    assert weights.shape == (2, 1)
