"""The benchmark's landscape families have the shapes they claim."""

import math
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from landscapes import FAMILIES  # noqa: E402


@pytest.mark.parametrize("rep", range(5))
def test_cliff_diverges_within_0_3_decades_above_the_optimum(rep):
    land = FAMILIES["cliff"](np.random.default_rng(rep), 0.01)
    xs = np.linspace(-4, 1, 5001)
    values = np.array([land.f(np.array([x])) for x in xs])
    finite = np.isfinite(values)
    best_x = xs[np.nanargmin(values)]
    edge = xs[finite][-1]
    assert not finite[xs > edge + 1e-3].any()  # NaN beyond the cliff
    assert 0 <= edge - best_x <= 0.3 + 1e-3
    assert land.regret(np.array([best_x])) == pytest.approx(0, abs=1e-3)
    assert land.regret(None) == pytest.approx(land.worst - land.best)


@pytest.mark.parametrize("rep", range(5))
def test_bound_family_optimum_is_at_or_beyond_a_bound(rep):
    land = FAMILIES["bound"](np.random.default_rng(rep), 0.01)
    xs = np.linspace(land.params[0].low, land.params[0].high, 2001)
    best_x = xs[np.argmin([land.f(np.array([x])) for x in xs])]
    assert min(best_x - xs[0], xs[-1] - best_x) <= 0.05 + 1e-9


def test_two_minima_have_different_depths():
    land = FAMILIES["two_minima"](np.random.default_rng(0), 0.01)
    xs = np.linspace(-4, 1, 2001)
    ys = np.array([land.f(np.array([x])) for x in xs])
    minima = [i for i in range(1, len(xs) - 1) if ys[i] < ys[i - 1] and ys[i] < ys[i + 1]]
    assert len(minima) == 2 and abs(ys[minima[0]] - ys[minima[1]]) > 0.05


def test_momentum_landscape_depends_on_effective_learning_rate():
    land = FAMILIES["momentum"](np.random.default_rng(0), 0.01)
    a = land.f(np.array([-2.0, 0.0]))
    b = land.f(np.array([-2.0 - math.log10(10.0), 0.9]))  # lr/10 at momentum 0.9
    # Same effective rate: differ only by the small momentum penalty.
    assert abs(a - b) < 0.3 * 0.9**2 + 1e-9


def test_noise_is_added_and_divergence_stays_nan():
    land = FAMILIES["cliff"](np.random.default_rng(1), 0.01)
    rng = np.random.default_rng(0)
    draws = [land.sample(np.array([-2.0]), rng) for _ in range(200)]
    assert np.std(draws) == pytest.approx(0.01, rel=0.2)
    assert math.isnan(land.sample(np.array([1.0]), rng))
