"""Every proposal path obeys every rule, on random sequences of results (a property test).

The rules are restated here independently of ``boresnet/tuner/exclusions.py``: no
proposal within ``min_distance`` of an evaluated point (decades on a log scale, that
fraction of the range on a linear one, in every coordinate at once), and none at a
learning rate at or above one that diverged with the other parameters the same (a
divergence at the lowest rate of the range excepted: it would rule out every rate).
A range used up is a :class:`SearchExhausted`, never a proposal that breaks a rule.
"""

import math

import numpy as np
import pytest
import torch

from boresnet.tuner import BayesianOptimizer, ParamSpec, SearchExhausted, SearchSpace

SEQUENCES = 100  # per dimension: 200 in all
MIN_DISTANCE = 0.01


def random_space(rng, dims):
    low = 10 ** rng.uniform(-4, -1)
    # Now and then a range of a few hundredths of a decade: soon used up.
    span = rng.choice([rng.uniform(0.02, 0.06), rng.uniform(1, 4)])
    params = [ParamSpec("lr", low, low * 10**span, "log")]
    if dims == 2:
        params.append(ParamSpec("momentum", 0.0, 0.99, "linear"))
    return SearchSpace(params)


def radius(space):
    return np.array(
        [
            MIN_DISTANCE if p.scale == "log" else MIN_DISTANCE * (p.high - p.low)
            for p in space.params
        ]
    )


def coords(space, params):
    return space.to_coords(params).numpy()


def broken_rules(space, observations, proposal):
    """The rules ``proposal`` breaks, given the observations it was proposed after."""
    x, r, broken = coords(space, proposal), radius(space), []
    low_lr = math.log10(space.params[0].low)
    for o in observations:
        y = coords(space, o.params)
        if np.all(np.abs(x - y) <= r):
            broken.append(f"within min_distance of {o.params}")
        if o.status == "diverged" and y[0] > low_lr + r[0]:
            same_others = np.all(np.abs(x[1:] - y[1:]) <= r[1:])
            if x[0] >= y[0] and same_others:
                broken.append(f"at or above the divergence at {o.params}")
    return broken


def random_result(rng, space, params):
    status = rng.choice(["ok", "ok", "ok", "diverged", "failed"])
    if status != "ok":
        return None, status
    x = space.coords_to_unit(space.to_coords(params)).numpy()
    # A smooth bowl, or a flat plateau (which makes the search stall and explore).
    value = 0.2 + float(np.sum((x - 0.4) ** 2)) if rng.random() < 0.6 else 2.3
    return value + 0.01 * rng.standard_normal(), "ok"


@pytest.mark.slow
@pytest.mark.parametrize("dims", [1, 2])
def test_every_proposal_obeys_every_rule_on_random_sequences(dims):
    rng = np.random.default_rng(100 + dims)
    kinds, exhausted = set(), 0
    for sequence in range(SEQUENCES):
        space = random_space(rng, dims)
        budget = int(rng.integers(4, 12))
        opt = BayesianOptimizer(
            space,
            seed=sequence,
            num_restarts=2,
            raw_samples=32,
            min_distance=MIN_DISTANCE,
            budget=budget if rng.random() < 0.5 else None,
        )
        told = int(rng.integers(0, budget))
        for _ in range(told):  # random points, some next to each other or at the bounds
            u = rng.choice([rng.random(dims), np.round(rng.random(dims)), np.full(dims, 0.5)])
            params = space.from_unit(torch.tensor(u, dtype=torch.double))
            opt.tell(params, *random_result(rng, space, params))
        # One proposal per sequence: the random prefix puts the optimiser in every state.
        try:
            proposal = opt.ask()
        except SearchExhausted:
            exhausted += 1
            continue
        broken = broken_rules(space, opt.observations, proposal)
        assert not broken, (sequence, opt.last_proposal_kind, proposal, broken)
        kinds.add(opt.last_proposal_kind.split("+")[0])
    # The sequences reached every proposal path, and (in 1-D) some ranges were used up.
    assert {"sobol", "logei", "explore", "gap"} <= kinds, kinds
    assert exhausted > 0 or dims == 2
