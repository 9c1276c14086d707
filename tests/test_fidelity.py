"""Short evaluations modelled with full ones: the fidelity, its budget and its proposals."""

import math

import pytest
import torch

from boresnet.config.checks import ConfigError
from boresnet.config.schema import Config, FidelityConfig, from_dict, to_dict
from boresnet.training.trial import length_overrides
from boresnet.tuner import (
    BayesianOptimizer,
    Fidelity,
    ParamSpec,
    Pending,
    SearchSpace,
    acquisition,
    lengths,
    rules,
)

LR = SearchSpace([ParamSpec("lr", 1e-3, 10.0)])
LENGTHS = Fidelity("epochs", (0.5, 1.0, 2.0))


def curve(params: dict[str, float]) -> float:
    """A learning-rate valley whose optimum moves to smaller rates in shorter runs."""
    x, s = math.log10(params["lr"]), params["epochs"]
    optimum = -0.5 - 0.2 * math.log2(2.0 / s)
    if x > optimum + 0.6:
        return math.nan
    return 0.2 + 0.3 * (x - optimum) ** 2 + 0.3 * math.log2(2.0 / s)


def test_fidelity_lengths_costs_and_errors():
    assert Fidelity.halvings("epochs", 0.25, 2).lengths == (0.25, 0.5, 1.0, 2.0)
    assert LENGTHS.cost(0.5) == 0.25 and LENGTHS.full == 2.0 and LENGTHS.shortest == 0.5
    assert LENGTHS.of({"lr": 0.1, "epochs": 1.0 + 1e-12}) == 1.0  # read back through JSON
    for bad in ((1.0,), (1.0, 0.5), (0.0, 1.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match="epochs"):
            Fidelity("epochs", bad)
    with pytest.raises(ValueError, match="halved"):
        Fidelity.halvings("epochs", 0.3, 2)
    with pytest.raises(ValueError, match="not one of the lengths"):
        LENGTHS.of({"epochs": 0.75})
    with pytest.raises(ValueError, match="needs its length"):
        LENGTHS.of({"lr": 0.1})
    # The budget ends with a full evaluation: less than one left after one is done.
    assert not LENGTHS.exhausted([{"epochs": 0.5}] * 4, 2)
    assert LENGTHS.exhausted([{"epochs": 0.5}] * 4 + [{"epochs": 2.0}], 2)
    assert not LENGTHS.exhausted([{"epochs": 0.5}] * 5, 2)  # 0.75 left, none full yet


def test_a_length_compresses_the_schedule_into_whole_or_part_epochs():
    assert length_overrides(None, 2) == {} and length_overrides(2, 2) == {}
    assert length_overrides(0.25, 2) == {"max_epochs": 1, "limit_train_batches": 0.25}
    assert length_overrides(1, 2) == {"max_epochs": 1, "limit_train_batches": 1.0}
    assert length_overrides(1.5, 2) == {"max_epochs": 2, "limit_train_batches": 0.75}
    with pytest.raises(ConfigError, match="search.fidelity"):
        length_overrides(3, 2)


def test_the_config_names_its_fidelity_and_refuses_lengths_past_max_epochs():
    config = from_dict({"search": {"fidelity": {"low": 0.5}}, "trainer": {"max_epochs": 2}})
    assert config.search.fidelity.fidelity(2).lengths == (0.5, 1.0, 2.0)
    assert from_dict(to_dict(config)).search.fidelity == config.search.fidelity
    listed = FidelityConfig(lengths=[0.5, 1])
    assert listed.fidelity(2).lengths == (0.5, 1.0, 2.0)  # the full length is added
    with pytest.raises(ConfigError, match="search.fidelity: give either"):
        FidelityConfig(low=0.5, lengths=[1])
    with pytest.raises(ConfigError, match="max_epochs"):
        from_dict({"search": {"fidelity": {"lengths": [4]}}, "trainer": {"max_epochs": 2}})
    with pytest.raises(ConfigError, match="search.fidelity"):
        from_dict({"search": {"fidelity": {"low": 0.3}}, "trainer": {"max_epochs": 2}})
    assert Config().search.fidelity is None  # off by default: ten full evaluations


def test_a_kernel_the_fidelity_gp_would_ignore_is_refused_where_it_enters():
    with pytest.raises(ValueError, match="kernel: 'rbf' is not available with a fidelity"):
        BayesianOptimizer(LR, fidelity=LENGTHS, kernel="rbf")
    BayesianOptimizer(LR, kernel="rbf")  # without a fidelity it is the GP's kernel
    fidelity = {"lengths": [1, 2]}
    with pytest.raises(ConfigError, match="search.kernel: 'rbf' is not available"):
        from_dict({"search": {"fidelity": fidelity, "kernel": "rbf"}, "trainer": {"max_epochs": 2}})
    assert from_dict({"search": {"fidelity": fidelity}, "trainer": {"max_epochs": 2}}).search


def test_a_multi_fidelity_run_spends_its_budget_and_reports_a_full_length_point():
    opt = BayesianOptimizer(LR, seed=0, budget=3, fidelity=LENGTHS)
    first = opt.ask()
    assert first["epochs"] == 0.5 and opt.last_proposal_kind == "sobol"
    best = opt.run(curve, 3)
    spent = sum(LENGTHS.cost(o.params["epochs"]) for o in opt.observations)
    assert spent == pytest.approx(opt.spent()) and 2 <= spent <= 3 + 1e-9
    assert len(opt.observations) > 3  # short runs: more evaluations than full trainings
    assert best is not None and best.params["epochs"] == 2.0
    full = [o for o in opt.observations if o.params["epochs"] == 2.0 and o.ok]
    assert best in full
    assert opt.observations[-1].params["epochs"] == 2.0  # it ends with a full evaluation
    # The reported rate is near the full-length optimum (10**-0.5), not the short runs'.
    assert abs(math.log10(best.params["lr"]) + 0.5) < 0.5
    with pytest.raises(ValueError, match="needs its length"):
        opt.tell({"lr": 0.1}, 1.0)


def test_pending_points_carry_their_lengths_and_count_as_spent():
    opt = BayesianOptimizer(LR, seed=1, budget=2, fidelity=LENGTHS)
    for _ in range(3):
        p = opt.ask()
        opt.tell(p, curve(p))
    running = [Pending({"lr": 0.3, "epochs": 1.0}, "logei+feasibility")]
    assert opt.spent(running) == pytest.approx(opt.spent() + 0.5)
    nxt = opt.ask(pending=running)
    assert set(nxt) == {"lr", "epochs"} and nxt["epochs"] in LENGTHS.lengths
    assert nxt != running[0].params


def test_several_parameters_with_a_fidelity():
    space = SearchSpace([ParamSpec("lr", 1e-3, 10.0), ParamSpec("momentum", 0.0, 0.99, "linear")])
    opt = BayesianOptimizer(space, seed=0, budget=2, fidelity=LENGTHS)

    def f(p):
        return curve(p) + (p["momentum"] - 0.9) ** 2

    best = opt.run(f, 2)
    assert set(best.params) == {"lr", "momentum", "epochs"} and best.params["epochs"] == 2.0
    assert opt.spent() <= 2 + 1e-9


def test_the_last_full_run_is_chosen_even_before_a_gp_exists():
    fid = Fidelity("epochs", (0.5, 1.0))
    opt = BayesianOptimizer(LR, seed=0, budget=2, fidelity=fid)
    first = opt.ask()
    opt.tell(first, 1.0)
    running = [Pending({"lr": 0.2, "epochs": 0.5}, "sobol")]  # 1 of 2 spent with it
    last = opt.ask(pending=running)
    assert last == {**first, "epochs": 1.0} and opt.last_proposal_kind == "finish"


def test_the_full_runs_alone_rank_the_incumbent_and_choose_the_next_full_point():
    opt = BayesianOptimizer(LR, seed=0, budget=10, fidelity=LENGTHS)
    # Short runs that put the optimum at 10**-2, where the full length is poor.
    for x in (-3.0, -2.5, -2.0, -1.5, -1.0, 0.0, 0.5):
        opt.tell({"lr": 10**x, "epochs": 0.5}, 0.3 + 0.5 * (x + 2.0) ** 2)
    opt.tell({"lr": 10**-2.0, "epochs": 2.0}, 0.40)
    assert opt.full_surrogate() is opt.surrogate()  # one full evaluation: the joint models
    opt.tell({"lr": 10**0.0, "epochs": 2.0}, 0.20)
    opt.tell({"lr": 10**-1.0, "epochs": 2.0}, 0.30)
    # The joint GP's best point (its full-length trend carries the short run at 10**0.5)
    # has not been run in full: the full runs alone would not know what lies there.
    assert opt.full_surrogate() is opt.surrogate()
    opt.tell({"lr": 10**0.5, "epochs": 2.0}, 0.25)
    ranking = opt.full_surrogate()
    assert ranking is not opt.surrogate() and ranking.fidelity is None
    assert ranking.X.shape == (4, 1)  # the four full evaluations, without a length column
    assert opt.best().params == {"lr": 1.0, "epochs": 2.0}
    assert opt.full_surrogate() is ranking  # fitted once per set of observations
    # A full run's point is the full runs' models' choice; a short run's, the joint ones'.
    assert opt.models_of({"lr": 0.5, "epochs": 2.0}, "logei") is ranking
    assert opt.models_of({"lr": 0.5, "epochs": 0.5}, "logei") is opt.surrogate()
    assert opt.models_of({"lr": 0.5, "epochs": 2.0}, "finish") is opt.surrogate()
    proposal = opt.ask()
    assert opt.models_of(proposal) is (ranking if proposal["epochs"] == 2.0 else opt.surrogate())


def kinds_of_a_run(opt: BayesianOptimizer) -> list[tuple[float, str]]:
    """Each evaluation's length and kind, asking and telling ``curve`` until done."""
    out = []
    while not opt.done():
        p = opt.ask()
        out.append((p["epochs"], opt.last_proposal_kind))
        opt.tell(p, curve(p))
    return out


def test_when_only_the_last_full_run_fits_the_compute_before_it_is_a_short_design():
    # Model steps could not be followed up in full: 8 eighths of a training as a design.
    fid = Fidelity("epochs", (0.25, 0.5, 1.0, 2.0))
    run = kinds_of_a_run(BayesianOptimizer(LR, seed=0, budget=2, fidelity=fid))
    assert run == [(0.25, "sobol")] * 8 + [(2.0, "finish")]
    # Where a second full run fits, the model takes over after the usual design.
    run = kinds_of_a_run(BayesianOptimizer(LR, seed=0, budget=2.25, fidelity=fid))
    assert run[:3] == [(0.25, "sobol")] * 3 and run[3][1] != "sobol"
    # An explicit n_init always holds.
    run = kinds_of_a_run(BayesianOptimizer(LR, n_init=3, seed=0, budget=2, fidelity=fid))
    assert run[:3] == [(0.25, "sobol")] * 3 and run[3][1] != "sobol"


def test_one_divergence_does_not_push_the_short_design_into_the_lower_range():
    # A feasibility GP fitted to one divergence and one trained run puts its boundary
    # midway: a design that skipped its "likely divergences" left the upper half unseen.
    fid = Fidelity("epochs", (0.25, 0.5, 1.0, 2.0))
    opt = BayesianOptimizer(LR, seed=0, budget=2, fidelity=fid)
    opt.tell({"lr": 10**0.9, "epochs": 0.25}, math.nan, "diverged")
    opt.tell({"lr": 10**-2.9, "epochs": 0.25}, 2.3)
    rates = []
    while opt.last_proposal_kind != "finish":
        p = opt.ask()
        if opt.last_proposal_kind == "sobol":
            rates.append(math.log10(p["lr"]))
            opt.tell(p, 2.0)
    assert len(rates) == 6 and max(rates) < 0.9  # never at or above the divergence
    assert sum(-1.0 < x for x in rates) >= 2  # the upper half still gets design points


def test_the_design_before_model_steps_still_prefers_points_likely_to_train():
    # With room for two full runs the design is small and model steps follow: there the
    # feasibility GP's guess keeps it out of a likely divergence (2-D lost without it).
    fid = Fidelity("epochs", (0.25, 0.5, 1.0, 2.0))
    opt = BayesianOptimizer(LR, seed=3, budget=4, fidelity=fid)
    opt.tell({"lr": 10**0.9, "epochs": 0.25}, math.nan, "diverged")
    opt.tell({"lr": 10**-2.9, "epochs": 0.25}, 2.3)
    point = LR.to_coords(opt.ask())
    assert opt.last_proposal_kind == "sobol"
    models = opt.surrogate()
    assert float(models.failure_probability(point[None])[0]) < 0.5
    # The blind screen's rule would have taken a likely divergence here.
    blind = rules.design_point(LR, opt.exclusions(None, 0.25), models, 3, 2, False)
    assert float(models.failure_probability(blind[None])[0]) >= 0.5


def full_runs_ranking_study() -> BayesianOptimizer:
    """Short runs with their optimum at 10**-0.5, and five full runs around 10**-0.2."""
    opt = BayesianOptimizer(LR, seed=0, budget=10, fidelity=LENGTHS)
    for x in (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0):
        opt.tell({"lr": 10**x, "epochs": 0.5}, 0.3 + 0.5 * (x + 0.5) ** 2)
    for x in (-0.5, -0.2, 0.1, -0.119, -0.165):
        opt.tell({"lr": 10**x, "epochs": 2.0}, 0.10 + 0.05 * (x + 0.2) ** 2)
    return opt


def test_the_full_runs_gp_picks_its_next_full_run_near_its_incumbent(monkeypatch):
    opt = full_runs_ranking_study()
    assert opt.full_surrogate() is not opt.surrogate()
    incumbent = math.log10(opt.best().params["lr"])
    proposal = opt.ask()
    assert proposal["epochs"] == 2.0 and opt.last_proposal_kind == "logei"
    # Within 0.1 of the 4-decade range of the incumbent: the trust region.
    assert abs(math.log10(proposal["lr"]) - incumbent) <= 0.4 + 1e-9
    # Unbounded, the full runs' GP (which knows nothing of the short runs' verdict on
    # 10**-3) spends a full run at the lower bound.
    monkeypatch.setattr(rules, "trust_region", lambda space, centre: space.bounds())
    anywhere = full_runs_ranking_study().ask()
    assert anywhere["epochs"] == 2.0 and math.log10(anywhere["lr"]) == pytest.approx(-3.0)


def test_the_trust_region_is_a_box_around_its_centre_clipped_to_the_bounds():
    box = rules.trust_region(LR, torch.tensor([0.8], dtype=torch.double))
    assert box.flatten().tolist() == pytest.approx([0.4, 1.0])  # 0.1 of 4 decades; clipped
    box = rules.trust_region(LR, torch.tensor([-1.0], dtype=torch.double), 0.25)
    assert box.flatten().tolist() == pytest.approx([-2.0, 0.0])


def test_a_used_up_trust_region_leaves_the_whole_range():
    opt = BayesianOptimizer(LR, seed=0)
    for x, y in ((-3.0, 2.0), (-2.0, 1.0), (-1.0, 0.5), (-0.5, 0.4)):
        opt.tell({"lr": 10**x}, y)
    opt.tell({"lr": 1.0}, None, "diverged")  # rules out every rate from 10**0 up
    box = torch.tensor([[0.2], [1.0]], dtype=torch.double)
    acq, exclusions = opt.acquisition_function(), opt.exclusions()
    point = acquisition.maximise(acq, LR, exclusions, opt.surrogate(), 0, 0, 4, 64, box=box)
    assert float(point[0]) < 0.0  # outside the box, below the divergence
    box = torch.tensor([[-2.5], [-1.5]], dtype=torch.double)  # open: the point stays in it
    point = acquisition.maximise(acq, LR, exclusions, opt.surrogate(), 0, 0, 4, 64, box=box)
    assert -2.5 <= float(point[0]) <= -1.5


def test_a_run_is_not_shortened_to_a_length_where_it_would_diverge(monkeypatch):
    # Three short runs trained, then one at 10**0.88 diverged at 0.5 epochs: the
    # feasibility GP now expects runs at 0.5 to diverge, and a divergence says nothing
    # of the loss, so 0.5 no longer buys the most knowledge of the full length.
    space = SearchSpace([ParamSpec("lr", 1e-4, 10.0)])
    fid = Fidelity("epochs", (0.125, 0.25, 0.5, 1.0))
    opt = BayesianOptimizer(space, seed=2, budget=4, fidelity=fid)
    for x, y in ((-0.11, 2.047), (-2.70, 2.830), (-3.38, 2.419)):
        opt.tell({"lr": 10**x, "epochs": 0.125}, y)
    opt.tell({"lr": 10**0.88, "epochs": 0.5}, math.nan, "diverged")
    models, point = opt.surrogate(), torch.tensor([0.84], dtype=torch.double)

    def fails(length: float) -> float:
        at = torch.tensor([[0.84, fid.coord(length)]], dtype=torch.double)
        return float(models.failure_probability(at)[0])

    assert fails(0.5) > 0.99
    assert fails(lengths.choose_length(models, point, fid, fid.lengths)) < 0.5
    # Blind to divergence, the next run there is another 0.5 epochs.
    monkeypatch.setattr(models, "failure_probability", lambda coords: None)
    assert lengths.choose_length(models, point, fid, fid.lengths) == 0.5
