"""Fixed studies whose proposals pin the optimiser's behaviour (tests/fixtures/proposals.json).

Each scenario tells an optimiser some observations, then runs a closed loop: ask, record
the proposal and its kind, evaluate a deterministic landscape, tell. The fixture keeps
every proposal, kind and observation; ``test_proposal_fixture.py`` replays the recorded
observations into a fresh optimiser and requires the same proposals, so a refactoring
of the tuner that changes any decision fails.

Regenerate (only when a change of behaviour is intended, and say so in the commit):
``python tests/proposal_scenarios.py``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boresnet.tuner import BayesianOptimizer, ParamSpec, SearchSpace

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "proposals.json"
LR = {"name": "lr", "low": 1e-3, "high": 10.0, "scale": "log"}
WIDE_LR = {"name": "lr", "low": 1e-4, "high": 10.0, "scale": "log"}
MOMENTUM = {"name": "momentum", "low": 0.0, "high": 0.99, "scale": "linear"}
Result = tuple[float | None, str]


def cliff(p: dict[str, float]) -> Result:
    """A loss bowl whose optimum sits just below a divergence cliff at lr = 10**0.1."""
    x = math.log10(p["lr"])
    if x > 0.1:
        return None, "diverged"
    return 0.1 + 0.8 * (x + 0.2) ** 2, "ok"


def plateau(p: dict[str, float]) -> Result:
    """Chance level with a faint drift, and a narrow basin at lr = 10**-1.3."""
    x = math.log10(p["lr"])
    return 2.2 + 0.004 * x - 1.5 * math.exp(-(((x + 1.3) / 0.15) ** 2)), "ok"


def forrester(p: dict[str, float]) -> Result:
    """Forrester et al. on log10(lr) in [-4, 1]: a local minimum to the left of the global."""
    u = (math.log10(p["lr"]) + 4) / 5
    return (6 * u - 2) ** 2 * math.sin(12 * u - 4), "ok"


def valley(p: dict[str, float]) -> Result:
    """lr x momentum: a valley along lr / (1 - momentum), diverging above 10**0.5."""
    effective = math.log10(p["lr"] / (1 - p["momentum"]))
    if effective > 0.5:
        return None, "diverged"
    return 0.2 + (effective + 0.5) ** 2 + 0.3 * (p["momentum"] - 0.7) ** 2, "ok"


def failing(p: dict[str, float]) -> Result:
    """A bowl where trials fail (not diverge) above lr = 3."""
    x = math.log10(p["lr"])
    return (None, "failed") if p["lr"] > 3 else (0.3 + (x + 1) ** 2, "ok")


LANDSCAPES: dict[str, Callable[[dict[str, float]], Result]] = {
    "cliff": cliff,
    "plateau": plateau,
    "forrester": forrester,
    "valley": valley,
    "failing": failing,
}

# name: space, optimiser arguments, landscape, told observations (log10 lr: value), steps.
SCENARIOS: dict[str, dict[str, Any]] = {
    "1d_divergence": {"params": [LR], "kwargs": {"seed": 0}, "f": "cliff", "steps": 10},
    "1d_divergence_seed3": {"params": [LR], "kwargs": {"seed": 3}, "f": "cliff", "steps": 10},
    "1d_stalled": {
        "params": [LR],
        "kwargs": {"seed": 0},
        "f": "plateau",
        "told": [-2.9, -2.3, 0.2, 0.6, -0.2, 0.9],
        "steps": 6,
    },
    "gap_step": {
        "params": [WIDE_LR],
        "kwargs": {"seed": 1},
        "f": "forrester",
        "told": [-1.62, -1.20, -1.87, -1.98],
        "steps": 5,
    },
    "2d": {"params": [LR, MOMENTUM], "kwargs": {"seed": 0}, "f": "valley", "steps": 12},
    "known_budget": {
        "params": [LR],
        "kwargs": {"seed": 2, "budget": 9},
        "f": "plateau",
        "told": [-2.9, -2.3, 0.2, 0.6, -0.2, 0.9],
        "steps": 3,
    },
    "impute_ei": {
        "params": [LR],
        "kwargs": {"seed": 0, "failures": "impute", "acquisition": "ei", "transform": "none"},
        "f": "failing",
        "steps": 8,
    },
    "exclude_rbf": {
        "params": [LR],
        "kwargs": {"seed": 5, "failures": "exclude", "kernel": "rbf"},
        "f": "failing",
        "steps": 8,
    },
}


def build(scenario: dict[str, Any], perturb: float = 0.0) -> BayesianOptimizer:
    """A fresh optimiser for ``scenario``, told its fixed observations.

    Args:
        scenario: One of :data:`SCENARIOS`.
        perturb: A relative change applied to every told value.
    """
    space = SearchSpace([ParamSpec(**p) for p in scenario["params"]])
    opt = BayesianOptimizer(space, **scenario["kwargs"])
    for x in scenario.get("told", []):
        params = {"lr": 10**x}
        value, status = LANDSCAPES[scenario["f"]](params)
        opt.tell(params, None if value is None else value * (1 + perturb), status)
    return opt


def record(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """Run ``scenario``'s closed loop: each step's proposal, kind and result."""
    opt = build(scenario)
    steps = []
    for _ in range(scenario["steps"]):
        params = opt.ask()
        value, status = LANDSCAPES[scenario["f"]](params)
        steps.append(
            {"proposal": params, "kind": opt.last_proposal_kind, "value": value, "status": status}
        )
        opt.tell(params, value, status)
    return steps


def main() -> None:
    """Write the fixture from the optimiser as it is now."""
    fixture = {name: record(s) for name, s in SCENARIOS.items()}
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture, indent=1) + "\n")
    for name, steps in fixture.items():
        print(name, [s["kind"] for s in steps], file=sys.stderr)


if __name__ == "__main__":
    main()
