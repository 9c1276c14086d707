"""make_lr_table.py measures every grid point once per seed, and resumes where it stopped.

The trials are replaced by a function of the point, so the grid walk and the CSV are
tested without training anything.
"""

import sys

import pytest

from boresnet.training.trial import TrialResult
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import make_lr_table  # noqa: E402
from landscapes import Table, table_rows  # noqa: E402


@pytest.fixture
def trials(monkeypatch):
    """Replace training by a smooth function of the point; record each trial's point."""
    calls: list[tuple[float, float | None, int]] = []

    def fake_trial(config, params, seed=0, length=None):
        calls.append((params["lr"], params.get("momentum"), seed))
        value = 0.1 + (params["lr"] - 0.1) ** 2 + params.get("momentum", 0.0) + 0.01 * seed
        value += 0.0 if length is None else 1.0 / length
        return TrialResult("ok", value, value, 0.9, 2, 0.01)

    monkeypatch.setattr(make_lr_table, "run_trial", fake_trial)
    return calls


def measure(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["make_lr_table.py", *args])
    make_lr_table.main()


@pytest.mark.parametrize("momenta", [None, "0,0.9"])
def test_every_point_once_per_seed_then_a_resume_adds_a_seed(
    momenta, trials, monkeypatch, tmp_path
):
    out = tmp_path / "table.csv"
    grid = ["--points", "3", "--out", str(out)]
    if momenta is not None:
        grid += ["--momenta", momenta]
    per_seed = 3 * (1 if momenta is None else 2)
    measure(monkeypatch, *grid, "--seeds", "2")
    assert len(trials) == 2 * per_seed and len(table_rows(out.read_text())) == 2 * per_seed
    assert out.read_text().startswith("# made by: python benchmarks/make_lr_table.py --points 3")
    # Asked for a third seed, it runs only that seed's points.
    measure(monkeypatch, *grid, "--seeds", "3")
    assert len(trials) == 3 * per_seed and {seed for *_, seed in trials[2 * per_seed :]} == {2}
    assert "--seeds 3" in out.read_text().splitlines()[0]  # the header names the resume
    keys = [(r["log10_lr"], r.get("momentum"), r["seed"]) for r in table_rows(out.read_text())]
    assert len(keys) == len(set(keys)) == 3 * per_seed
    # Run again: nothing left to measure, and the table reads back with every seed.
    measure(monkeypatch, *grid, "--seeds", "3")
    assert len(trials) == 3 * per_seed
    assert len(Table(out).curves) == 3


def test_lengths_measure_every_rate_at_every_length(trials, monkeypatch, tmp_path):
    out = tmp_path / "lengths.csv"
    measure(monkeypatch, "--points", "3", "--seeds", "2", "--lengths", "0.5,1", "--out", str(out))
    rows = table_rows(out.read_text())
    assert len(rows) == len(trials) == 2 * 2 * 3
    assert {r["epochs"] for r in rows} == {"0.5", "1"}
    assert "--lengths 0.5,1" in out.read_text().splitlines()[0]
    assert out.read_text().splitlines()[-1].startswith("# this run took")
    # Resumed, nothing is measured twice.
    measure(monkeypatch, "--points", "3", "--seeds", "2", "--lengths", "0.5,1", "--out", str(out))
    assert len(trials) == 12
