"""The optimiser makes the proposals the committed fixture recorded: behaviour pinned."""

import json

import pytest
from proposal_scenarios import FIXTURE, SCENARIOS, build

RECORDED = json.loads(FIXTURE.read_text())


def test_the_fixture_covers_every_kind_of_proposal():
    kinds = {step["kind"].split("+")[0] for steps in RECORDED.values() for step in steps}
    assert {"sobol", "logei", "ei", "explore", "gap"} <= kinds, kinds
    assert any(s["kind"].endswith("+feasibility") for steps in RECORDED.values() for s in steps)
    assert set(RECORDED) == set(SCENARIOS)


# BoTorch's advice to prefer log-EI, raised by the "ei" scenario on purpose.
@pytest.mark.filterwarnings("ignore:ExpectedImprovement has known numerical issues")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replayed_observations_give_the_recorded_proposals(name):
    opt = build(SCENARIOS[name])
    for i, step in enumerate(RECORDED[name]):
        params = opt.ask()
        # Exact: the same floating-point operations in the same order give the same bits.
        assert (params, opt.last_proposal_kind) == (step["proposal"], step["kind"]), (name, i)
        opt.tell(step["proposal"], step["value"], step["status"])
