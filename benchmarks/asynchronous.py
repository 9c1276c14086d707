"""The asynchronous mode of ``bo_regret.py``: q evaluations in flight, a proposal as each ends.

A simulated clock replaces the trials' real durations: each evaluation takes a
log-normal time (median 1, ``DURATION_SIGMA``), so the order in which evaluations finish
differs from the order they started, as with real trials on several workers. Each
method proposes whenever a slot is free, told what still runs in its own way:

- ``boresnet``: ``BayesianOptimizer.ask(pending=...)`` (qLogEI with ``X_pending``);
- ``tpe_liar``: Optuna's TPE with ``constant_liar=True`` (running trials count as bad);
- ``gp``: Optuna's GP sampler (this Optuna's has no constant liar: it is told nothing
  of the running trials);
- ``random``: uniform in search coordinates.

The durations are drawn from a seed of the family and instance only, so every method
faces the same sequence of durations. The simulated wall time is the time the last
evaluation finished.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from landscapes import bounds

from boresnet.config.schema import Config, ParamConfig, SearchConfig
from boresnet.study.adapter import build_optimizer
from boresnet.tuner import Pending

# The spread of trial durations: a sigma of 0.5 puts the 10th and 90th percentiles at
# about half and twice the median, as trials of different learning rates (divergences
# stop early) on shared machines differ.
DURATION_SIGMA = 0.5
ASYNC_METHODS = ("boresnet", "tpe_liar", "gp", "random")

# A run: evaluations in completion order, their noisy values, the reported point, the
# proposal overhead per evaluation (s) and the simulated wall time.
AsyncRun = tuple[list[np.ndarray], list[float], np.ndarray | None, float, float]


def simulate(
    propose: Callable[[], tuple[np.ndarray, Any]],
    tell: Callable[[Any, np.ndarray, float], None],
    f: Callable[[np.ndarray], float],
    budget: int,
    q: int,
    durations: np.random.Generator,
) -> tuple[list[np.ndarray], list[float], float, float]:
    """Run ``budget`` evaluations with ``q`` in flight on a simulated clock.

    Args:
        propose: The next point and a token the method keeps for it.
        tell: Told the token, point and value of each evaluation as it finishes.
        f: The noisy objective.
        budget: Evaluations in all.
        q: Evaluations in flight at once.
        durations: Draws each evaluation's duration, in the order they start.

    Returns:
        Points and values in completion order, the proposal overhead (s), and the
        simulated wall time.
    """
    events: list[tuple[float, int, np.ndarray, Any]] = []
    xs: list[np.ndarray] = []
    ys: list[float] = []
    now, started, overhead = 0.0, 0, 0.0
    while len(xs) < budget:
        while len(events) < q and started < budget:
            t = time.perf_counter()
            x, token = propose()
            overhead += time.perf_counter() - t
            finish = now + durations.lognormal(0.0, DURATION_SIGMA)
            heapq.heappush(events, (finish, started, x, token))
            started += 1
        now, _, x, token = heapq.heappop(events)
        y = f(x)
        t = time.perf_counter()
        tell(token, x, y)
        overhead += time.perf_counter() - t
        xs.append(x)
        ys.append(y)
    return xs, ys, overhead, now


def search_params(land) -> list[ParamConfig]:
    """A landscape's coordinates as the ``search.params`` of ``boresnet bo``."""
    return [
        ParamConfig(
            p.name,
            *((10**p.low, 10**p.high) if p.log else (p.low, p.high)),
            "log" if p.log else "linear",
        )
        for p in land.params
    ]


def best_observed(xs: list[np.ndarray], ys: list[float]) -> np.ndarray | None:
    """The point of the lowest finite value (``None`` when every one failed)."""
    finite = [(y, i) for i, y in enumerate(ys) if not math.isnan(y)]
    return xs[min(finite)[1]] if finite else None


def run_boresnet(land, f, budget: int, seed: int, q: int, durations) -> AsyncRun:
    """The optimiser of ``boresnet bo`` (its defaults), told what runs as pending."""
    config = Config(search=SearchConfig(params=search_params(land), budget=budget), seed=seed)
    opt = build_optimizer(config)
    running: dict[int, Pending] = {}
    tokens = itertools.count()

    def propose() -> tuple[np.ndarray, int]:
        p = opt.ask(pending=list(running.values()))
        token = next(tokens)
        running[token] = Pending(p, opt.last_proposal_kind)
        return opt.space.to_coords(p).numpy(), token

    def tell(token: int, x: np.ndarray, y: float) -> None:
        done = running.pop(token)
        opt.tell(done.params, y, "ok" if not math.isnan(y) else "diverged")

    xs, ys, overhead, wall = simulate(propose, tell, f, budget, q, durations)
    best = opt.best()
    reported = None if best is None else opt.space.to_coords(best.params).numpy()
    return xs, ys, reported, overhead / budget, wall


def run_optuna(kind: str) -> Callable[..., AsyncRun]:
    """Optuna's TPE (with the constant liar) or GP sampler, 2-point start-up, ask/tell."""

    def run(land, f, budget: int, seed: int, q: int, durations) -> AsyncRun:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if kind == "tpe_liar":
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=2, constant_liar=True)
        else:
            sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=2)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        dist = {p.name: optuna.distributions.FloatDistribution(p.low, p.high) for p in land.params}

        def propose() -> tuple[np.ndarray, Any]:
            trial = study.ask(dist)
            return np.array([trial.params[p.name] for p in land.params]), trial

        def tell(trial: Any, x: np.ndarray, y: float) -> None:
            if math.isnan(y):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, y)

        xs, ys, overhead, wall = simulate(propose, tell, f, budget, q, durations)
        return xs, ys, best_observed(xs, ys), overhead / budget, wall

    return run


def run_random(land, f, budget: int, seed: int, q: int, durations) -> AsyncRun:
    """Uniform random search in search coordinates."""
    low, high = bounds(land.params)
    rng = np.random.default_rng(10_000 + seed)

    def propose() -> tuple[np.ndarray, None]:
        return rng.uniform(low, high), None

    xs, ys, overhead, wall = simulate(propose, lambda *_: None, f, budget, q, durations)
    return xs, ys, best_observed(xs, ys), overhead / budget, wall


ASYNC_RUNNERS: dict[str, Callable[..., AsyncRun]] = {
    "boresnet": run_boresnet,
    "tpe_liar": run_optuna("tpe_liar"),
    "gp": run_optuna("gp"),
    "random": run_random,
}


def label(method: str, q: int) -> str:
    """A method's name in the results: ``boresnet@q2``."""
    return f"{method}@q{q}"


def ratio_of(a: dict, b: dict, floor: float = 1e-4) -> str:
    """``a``'s median over ``b``'s (both floored: ties, not 0/0), as ``1.23x``."""
    return f"{max(a['median'], floor) / max(b['median'], floor):.2f}x"


def render_async(stats: dict, args: dict) -> str:
    """The Markdown of an asynchronous run: one table per q, then the ratio checks.

    Args:
        stats: ``{family: {label: {median, p90, ...}}}`` with ``overall`` pooled
            (normalised regret), as ``bo_regret.py`` computes them.
        args: The run's arguments (``budget``, ``reps``, ``parallel``).
    """
    families = [f for f in stats if f != "overall"]
    qs = [int(q) for q in str(args["parallel"]).split(",")]
    methods = [m for m in ASYNC_METHODS if any(label(m, q) in stats["overall"] for q in qs)]
    lines = [
        f"Asynchronous mode: {args['budget']} evaluations, q in flight, durations "
        f"log-normal (sigma {DURATION_SIGMA}), a proposal as each evaluation ends; "
        f"{args['reps']} instances per family ({args.get('table_reps', args['reps'])} noise "
        "draws of the table). Median noise-free regret of the reported point; overall: "
        "normalised, all families pooled. Wall: mean simulated time (median duration 1).",
        "",
    ]
    for q in qs:
        lines += [
            f"**q = {q}**",
            "",
            "| method | " + " | ".join(families) + " | overall median | overall p90 | wall |",
            "|---|" + "---|" * (len(families) + 3),
        ]
        for m in methods:
            key = label(m, q)
            cells = [
                f"{stats[f][key]['median']:.4f}" if key in stats[f] else "n/a" for f in families
            ]
            o = stats["overall"].get(key)
            if o is None:
                continue
            lines.append(
                f"| {m} | "
                + " | ".join(cells)
                + f" | {o['median']:.4f} | {o['p90']:.4f} | {o['wall']:.2f} |"
            )
        lines.append("")
    base = stats["overall"].get(label("boresnet", 1))
    lines.append("**Checks**")
    lines.append("")
    for q in qs:
        mine = stats["overall"].get(label("boresnet", q))
        if mine is None:
            continue
        if base is not None and q != 1:
            one, this = label("boresnet", 1), label("boresnet", q)
            per_family = ", ".join(
                f"{f} {ratio_of(stats[f][this], stats[f][one])}"
                for f in families
                if this in stats[f] and one in stats[f]
            )
            lines.append(
                f"- q = {q}: boresnet's pooled median is {ratio_of(mine, base)} its q = 1 "
                f"median; per family: {per_family}"
            )
        wins = [
            f
            for f in families
            if all(
                stats[f][label("boresnet", q)]["median"] < stats[f][label(m, q)]["median"]
                for m in methods
                if m != "boresnet" and label(m, q) in stats[f]
            )
        ]
        lines.append(
            f"- q = {q}: boresnet's median is below every peer's on {len(wins)} of "
            f"{len(families)} families ({', '.join(wins) or 'none'})"
        )
    return "\n".join(lines)
