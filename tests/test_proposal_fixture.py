"""The optimiser makes the proposals the committed fixture recorded: behaviour pinned.

The kinds must match exactly and the points to within floating-point rounding: a GP
fit on another CPU (other BLAS kernels) gives other last digits, never another
decision. The tolerance is shown to be strict below: observations perturbed far more
than rounding still replay, and every changed rule fails.
"""

import json

import pytest
from proposal_scenarios import FIXTURE, SCENARIOS, build

RECORDED = json.loads(FIXTURE.read_text())
# How far a replayed point may stray, as a fraction of each parameter's range in search
# coordinates (decades on a log scale): 1e-6 of 4 decades is 4e-6 decades. Observations
# perturbed by a relative 1e-12 move a proposal by at most 8e-10 of the range; the
# changed rules below by 2.5e-3 or more, or change its kind.
TOLERANCE = 1e-6


def mismatches(name: str, perturb: float = 0.0, **overrides) -> list[tuple[int, str]]:
    """Replay scenario ``name``; return each step whose kind or point differs.

    Args:
        name: The scenario.
        perturb: A relative change applied to every told value (rounding's stand-in).
        **overrides: Optimiser arguments that replace the scenario's (a changed rule).
    """
    scenario = {**SCENARIOS[name], "kwargs": {**SCENARIOS[name]["kwargs"], **overrides}}
    opt = build(scenario, perturb=perturb)
    space = opt.space
    found = []
    for i, step in enumerate(RECORDED[name]):
        params = opt.ask()
        got, want = space.to_unit(params), space.to_unit(step["proposal"])
        gap = float((got - want).abs().max())
        if opt.last_proposal_kind != step["kind"]:
            found.append((i, f"kind {opt.last_proposal_kind} != {step['kind']}"))
        elif gap > TOLERANCE:
            found.append((i, f"point off by {gap:.2e} of the range"))
        value = step["value"] * (1 + perturb) if step["value"] is not None else None
        opt.tell(step["proposal"], value, step["status"])
    return found


def test_the_fixture_covers_every_kind_of_proposal():
    kinds = {step["kind"].split("+")[0] for steps in RECORDED.values() for step in steps}
    assert {"sobol", "logei", "ei", "explore", "gap"} <= kinds, kinds
    assert any(s["kind"].endswith("+feasibility") for steps in RECORDED.values() for s in steps)
    assert set(RECORDED) == set(SCENARIOS)


# BoTorch's advice to prefer log-EI, raised by the "ei" scenario on purpose.
@pytest.mark.filterwarnings("ignore:ExpectedImprovement has known numerical issues")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replayed_observations_give_the_recorded_proposals(name):
    assert mismatches(name) == []


@pytest.mark.parametrize("name", ["1d_divergence", "gap_step"])
def test_observations_perturbed_beyond_rounding_still_replay(name):
    # 1e-12 relative is ten thousand times a double's rounding: the tolerance admits it.
    assert mismatches(name, perturb=1e-12) == []


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("1d_stalled", {"min_distance": 0.02}),
        ("1d_divergence", {"gap_radius": None}),
        ("gap_step", {"gap_radius": None}),
        ("1d_stalled", {"explore_after": None}),
        ("1d_divergence", {"num_restarts": 2, "raw_samples": 16}),
    ],
)
def test_a_changed_rule_fails(name, overrides):
    assert mismatches(name, **overrides) != []
