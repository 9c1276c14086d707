"""The benchmark's landscape families have the shapes they claim."""

import math
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from landscapes import FAMILIES, Table  # noqa: E402


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


HEADER_2D = "log10_lr,momentum,lr,seed,status,objective,val_loss,val_acc,wall_s"


def write_table(path, rows, header=HEADER_2D):
    lines = ["# a test table", header]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_a_2d_table_interpolates_and_keeps_divergence_and_whole_seeds(tmp_path):
    # log10_lr in {-2, -1, 0}, momentum in {0, 0.9}; (0, 0.9) diverged for seed 0.
    values = {
        (-2, 0.0): 1.5,
        (-2, 0.9): 0.8,
        (-1, 0.0): 1.0,
        (-1, 0.9): 0.4,
        (0, 0.0): 0.3,
        (0, 0.9): None,
    }
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.2)):
        for (x, m), v in values.items():
            ok = v is not None or seed == 1
            objective = (v if v is not None else 0.3) + shift
            status, value = ("ok", objective) if ok else ("diverged", "")
            rows.append((x, m, 10.0**x, seed, status, value, "", "", 1))
    rows.append((-1, 0.0, 0.1, 2, "ok", 9.0, "", "", 1))  # seed 2 is unfinished: ignored
    path = tmp_path / "lr_momentum_table.csv"
    write_table(path, rows)
    table = Table(path, "lr_momentum_table")
    assert table.curves.shape == (2, 3, 2)
    land = table.landscape()
    assert [p.name for p in land.params] == ["lr", "momentum"] and not land.params[1].log
    assert land.f(np.array([-1.0, 0.0])) == pytest.approx(1.1)  # the seeds' mean
    # Between four finite points: bilinear.
    assert land.f(np.array([-1.5, 0.45])) == pytest.approx((1.6 + 0.9 + 1.1 + 0.5) / 4)
    # Nearest to the point that diverged for a seed: diverged; next to it: the nearest value.
    assert math.isnan(land.f(np.array([-0.1, 0.85])))
    assert land.f(np.array([-0.9, 0.8])) == pytest.approx(0.5)
    assert land.best == pytest.approx(0.4) and land.worst == pytest.approx(1.6)


def test_a_table_with_no_finished_seed_is_one_clear_error(tmp_path):
    path = tmp_path / "lr_momentum_table.csv"
    write_table(
        path, [(-1, 0.0, 0.1, 0, "ok", 1.0, "", "", 1), (0, 0.9, 1.0, 1, "ok", 1.0, "", "", 1)]
    )
    with pytest.raises(ValueError, match="no training seed covers the whole grid"):
        Table(path)
