"""Tuner quality: boresnet against its peers on families of learning-rate landscapes.

Each repetition of each family draws a new landscape (``benchmarks/landscapes.py``) and
gives every method ``--budget`` noisy evaluations of it, the noise the size training
seeds give on the measured table. A method is scored by the noise-free regret of the
point it reports: boresnet reports its incumbent (the evaluated point with the lowest
posterior mean); the others their best observation. The ``table`` family replays the
measured CPU-profile curve (``benchmarks/data/lr_table.csv``).

Usage::

    python benchmarks/bo_regret.py [--reps 20] [--families cliff,table] [--methods ...]
    python benchmarks/bo_regret.py --suite classic          # classic test functions
    python benchmarks/bo_regret.py --suite table_200_draws  # the table, 200 noise draws
    python benchmarks/bo_regret.py --suite held_out         # instances from 1000 on
    python benchmarks/bo_regret.py --suite noise_x2         # twice the seeds' noise
    python benchmarks/bo_regret.py --parallel 1,2,4         # asynchronous: q in flight
    python benchmarks/bo_regret.py --fidelity               # short runs and full ones

A suite sets ``--families``, ``--methods`` (and the table's draws) to what ``SUITES``
lists for it, and ``--out`` to ``benchmarks/results/<suite>`` unless given::

    python benchmarks/bo_regret.py --suite multi --budget 20 --out benchmarks/results/multi_b20

Prints per-family and overall (normalised-regret) tables, and writes them with the raw
numbers to ``--out`` (``bo_regret.md``, ``bo_regret.json``, ``bo_regret.png``).

``--parallel`` runs the asynchronous mode (``benchmarks/asynchronous.py``): each method
keeps q evaluations in flight on a simulated clock and proposes as each one ends; its
methods are ``asynchronous.ASYNC_METHODS`` and its results go to
``benchmarks/results/async`` unless ``--out`` is given.

``--fidelity`` runs the multi-fidelity mode (``benchmarks/fidelity.py``): regret at full
length after budgets of 2, 4 and 10 full trainings of compute, on the measured tables at
several lengths and generated families (the 1-D ones by default; the 2-D ones by name,
``--families mf_momentum,mf_lr_wd,mf_lr_warmup``); results go to
``benchmarks/results/fidelity``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import torch
from prototype import prototype_ei, prototype_gp

from boresnet.atomic import atomic_path, write_text
from boresnet.config.schema import Config, SearchConfig
from boresnet.study.adapter import build_optimizer

matplotlib.use("Agg")
import fidelity  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from asynchronous import (  # noqa: E402
    ASYNC_METHODS,
    ASYNC_RUNNERS,
    best_observed,
    label,
    render_async,
    search_params,
)
from landscapes import FAMILIES, GENERATED, Landscape, Table, bounds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Measured landscapes besides the 1-D table (``--table``): each a family by name.
# The measured CPU-profile table: its seed-to-seed spread sets the generated families' noise.
NOISE_TABLE = ROOT / "benchmarks" / "data" / "lr_table.csv"
TABLES = {"lr_momentum_table": ROOT / "benchmarks" / "data" / "lr_momentum_table.csv"}
METHODS = [
    "boresnet",
    "boresnet_impute",
    "boresnet_exclude",
    "boresnet_no_explore",
    "boresnet_no_gap",
    "boresnet_explore_to_end",
    "boresnet_no_trend",
    "boresnet_no_log",
    "boresnet_n_init3",
    "boresnet_observed",
    "random",
    "grid",
    "tpe_short",
    "gp_short",
    "tpe_worst",
    "gp_worst",
    "prototype",
]
ALL_FAMILIES = [*FAMILIES, "table"]
# boresnet and the peers every multi-parameter and robustness suite compares.
AGAINST_PEERS = "boresnet,random,grid,tpe_short,gp_short"
# Several SGD hyperparameters, at budgets 10 and 20 (--budget, --out).
MULTI_SUITE: dict[str, str | int] = {
    "families": "momentum,lr_wd,lr_warmup,lr_mom_wd",
    "methods": AGAINST_PEERS,
}
# The default families against the peers and the prototype (the robustness suites).
DEFAULT_SUITE: dict[str, str | int] = {
    "families": ",".join(ALL_FAMILIES),
    "methods": f"{AGAINST_PEERS},prototype",
}
# The committed secondary runs (benchmarks/results/<name>): what each compares.
SUITES: dict[str, dict[str, str | int]] = {
    "classic": {
        "families": "forrester,gramacy_lee,levy,six_hump_camel",
        "methods": "boresnet,boresnet_no_gap,boresnet_explore_to_end,random,grid,"
        "tpe_short,gp_short,prototype",
    },
    "multi": MULTI_SUITE,
    # The measured lr x momentum surface of the CPU profile (--budget, --out).
    "multi_table": {"families": "lr_momentum_table", "methods": AGAINST_PEERS},
    # Instances the defaults were never measured on (seeds from 1000 on; the tuned
    # defaults saw instances 0-29): does what won on the committed draws still win?
    "held_out": {**DEFAULT_SUITE, "first_rep": 1000},
    "held_out_multi": {**MULTI_SUITE, "first_rep": 1000, "reps": 30},
    # Twice the seeds' noise on the generated families: trials noisier than the CPU
    # profile's (another model, another precision) must not break the defaults.
    "noise_x2": {**DEFAULT_SUITE, "noise_scale": 2.0},
    "table_200_draws": {
        "families": "table",
        "table_reps": 200,
        "methods": "boresnet,boresnet_no_gap,boresnet_explore_to_end,random,grid,prototype",
    },
}

# One evaluation: (coordinates, noisy value); a run: its evaluations and what it reports.
Run = tuple[list[np.ndarray], list[float], np.ndarray | None, float]


def run_boresnet(
    land: Landscape,
    f: Callable,
    budget: int,
    seed: int,
    report: str = "model",
    knows_budget: bool = True,
    **search,
) -> Run:
    """Run the BayesianOptimizer of ``boresnet bo`` with its default settings, via ask/tell.

    ``search`` overrides fields of ``search`` (the ablations of the defaults);
    ``report="observed"`` reports the best observation instead of the incumbent;
    ``knows_budget=False`` hides the budget, so the last step may explore too.
    """
    params = search_params(land)
    config = Config(search=SearchConfig(params=params, budget=budget, **search), seed=seed)
    opt = build_optimizer(config)
    if not knows_budget:
        opt.budget = None
    xs, ys, overhead = [], [], 0.0
    for _ in range(budget):
        t = time.perf_counter()
        p = opt.ask()
        overhead += time.perf_counter() - t
        x = opt.space.to_coords(p).numpy()
        y = f(x)
        t = time.perf_counter()
        opt.tell(p, y, "ok" if not math.isnan(y) else "diverged")
        overhead += time.perf_counter() - t
        xs.append(x)
        ys.append(y)
    best = opt.best()
    reported = None if best is None else opt.space.to_coords(best.params).numpy()
    if report == "observed":
        reported = best_observed(xs, ys)
    return xs, ys, reported, overhead


def run_random(land: Landscape, f: Callable, budget: int, seed: int) -> Run:
    """Uniform random search in search coordinates (log-uniform learning rates)."""
    low, high = bounds(land.params)
    rng = np.random.default_rng(10_000 + seed)
    xs = list(rng.uniform(low, high, (budget, len(low))))
    ys = [f(x) for x in xs]
    return xs, ys, best_observed(xs, ys), 0.0


def run_grid(land: Landscape, f: Callable, budget: int, seed: int) -> Run:
    """An evenly spaced grid (in 2-D the largest square one, the rest at random)."""
    low, high = bounds(land.params)
    k = int(math.floor(budget ** (1 / len(low)) + 1e-9))
    axes = [np.linspace(lo, hi, k) for lo, hi in zip(low, high, strict=True)]
    xs = [
        np.array(p) for p in np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(low))
    ]
    rng = np.random.default_rng(20_000 + seed)
    xs += list(rng.uniform(low, high, (budget - len(xs), len(low))))
    ys = [f(x) for x in xs]
    return xs, ys, best_observed(xs, ys), 0.0


def run_optuna(kind: str, on_failure: str):
    """Optuna's TPE or GP sampler with a 2-point start-up (its default 10 is random search).

    ``on_failure``: ``fail`` tells Optuna the trial failed; ``worst`` tells it the worst
    value seen so far (what a user of Optuna often does).
    """

    def run(land: Landscape, f: Callable, budget: int, seed: int) -> Run:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cls = optuna.samplers.TPESampler if kind == "tpe" else optuna.samplers.GPSampler
        study = optuna.create_study(
            direction="minimize", sampler=cls(seed=seed, n_startup_trials=2)
        )
        dist = {p.name: optuna.distributions.FloatDistribution(p.low, p.high) for p in land.params}
        xs, ys, overhead = [], [], 0.0
        for _ in range(budget):
            t = time.perf_counter()
            trial = study.ask(dist)
            overhead += time.perf_counter() - t
            x = np.array([trial.params[p.name] for p in land.params])
            y = f(x)
            t = time.perf_counter()
            finite = [v for v in ys if not math.isnan(v)]
            if not math.isnan(y):
                study.tell(trial, y)
            elif on_failure == "worst" and finite:
                study.tell(trial, max(finite))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            overhead += time.perf_counter() - t
            xs.append(x)
            ys.append(y)
        return xs, ys, best_observed(xs, ys), overhead

    return run


def run_prototype(land: Landscape, f: Callable, budget: int, seed: int, steps: int = 400) -> Run:
    """The original prototype's strategy (1-D only), re-implemented with GPyTorch.

    Zero-noise GP (jitter 1e-5), Matern-3/2, refitted each iteration by ``steps`` Adam
    steps, raw targets, failures at the worst value, EI over a 500-point grid, first
    point at lr = 1e-3 (clipped into the range).
    """
    (p,) = land.params
    grid = torch.linspace(p.low, p.high, 500, dtype=torch.double)
    x0 = float(np.clip(-3.0, p.low, p.high))
    xs, ys, overhead = [np.array([x0])], [f(np.array([x0]))], 0.0
    while len(xs) < budget:
        t = time.perf_counter()
        finite = [y for y in ys if not math.isnan(y)]
        worst = max(finite, default=0.0)
        X = torch.tensor([x[0] for x in xs], dtype=torch.double)
        Y = torch.tensor([worst if math.isnan(y) else y for y in ys], dtype=torch.double)
        model = prototype_gp(X, Y, steps)
        ei = prototype_ei(model, grid, float(Y.min()))
        x = np.array([float(grid[int(torch.argmax(ei))])])
        overhead += time.perf_counter() - t
        xs.append(x)
        ys.append(f(x))
    return xs, ys, best_observed(xs, ys), overhead


RUNNERS: dict[str, Callable] = {
    "boresnet": run_boresnet,
    "random": run_random,
    "grid": run_grid,
    "tpe_short": run_optuna("tpe", "fail"),
    "gp_short": run_optuna("gp", "fail"),
    "tpe_worst": run_optuna("tpe", "worst"),
    "gp_worst": run_optuna("gp", "worst"),
    "prototype": run_prototype,
    # Ablations: boresnet with one default changed (docs/benchmarks.md).
    "boresnet_impute": functools.partial(run_boresnet, failures="impute"),
    "boresnet_exclude": functools.partial(run_boresnet, failures="exclude"),
    "boresnet_no_explore": functools.partial(run_boresnet, explore_after=None),
    "boresnet_no_gap": functools.partial(run_boresnet, gap_radius=None),
    "boresnet_explore_to_end": functools.partial(run_boresnet, knows_budget=False),
    "boresnet_no_trend": functools.partial(run_boresnet, feasibility_trend=False),
    "boresnet_no_log": functools.partial(run_boresnet, transform="none"),
    "boresnet_n_init3": functools.partial(run_boresnet, n_init=3),
    "boresnet_observed": functools.partial(run_boresnet, report="observed"),
}


def make_landscape(family: str, rep: int, table: Table, noise_scale: float = 1.0) -> Landscape:
    """Instance ``rep`` of ``family`` (the same for every method).

    ``noise_scale`` multiplies the generated families' noise (the measured tables replay
    their own seeds' curves and keep theirs).
    """
    if family == "table":
        return table.landscape()
    if family in TABLES:
        return Table(TABLES[family], family).landscape()
    rng = np.random.default_rng([hash_name(family), rep])
    return GENERATED[family](rng, table.noise() * noise_scale)


def hash_name(name: str) -> int:
    """A stable small integer for a family name (Python's hash() is salted per run)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def one_run(task: tuple[str, str, int, int, str, int, float]) -> dict:
    """Run one method on one instance; return its regrets per evaluation and overhead.

    ``task`` ends with q (0 for the sequential mode, else evaluations in flight) and
    the noise scale.
    """
    family, method, rep, budget, table_path, q, noise_scale = task
    torch.set_num_threads(1)
    table = Table(Path(table_path))
    land = make_landscape(family, rep, table, noise_scale)
    rng = np.random.default_rng([hash_name(family), rep, 7])

    def f(x: np.ndarray) -> float:
        return land.sample(np.asarray(x, dtype=float), rng)

    if method == "prototype" and len(land.params) > 1:
        return {"family": family, "method": method, "rep": rep, "skipped": True}
    wall = None
    if q:
        durations = np.random.default_rng([hash_name(family), rep, 11])
        xs, ys, reported, overhead, wall = ASYNC_RUNNERS[method](land, f, budget, rep, q, durations)
        method, overhead = label(method, q), overhead * budget
    else:
        xs, ys, reported, overhead = RUNNERS[method](land, f, budget, rep)
    per_k = [land.regret(best_observed(xs[:k], ys[:k])) for k in range(1, budget + 1)]
    final = land.regret(reported)
    per_k[-1] = final
    low, high = bounds(land.params)
    edge = sum(
        bool(np.any(np.minimum(x - low, high - x)[[p.log for p in land.params]] < 0.1)) for x in xs
    )
    return {
        "family": family,
        "method": method,
        "rep": rep,
        "regret": final,
        "normalised": land.normalised(final),
        "per_k": [land.normalised(r) for r in per_k],
        "failures": int(sum(math.isnan(y) for y in ys)),
        "edge": edge,
        "overhead": overhead / budget,
        "wall": wall,
    }


def summarise(values: list[float]) -> dict[str, float]:
    """Median, 90th percentile and mean of a list of regrets."""
    a = np.array(values)
    return {
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "mean": float(a.mean()),
    }


FLOOR = 1e-4  # regrets below this (1% of the noise) count as this in ratios: ties, not 0/0


def ratio(a: float, b: float) -> str:
    """``a / b`` with both floored at :data:`FLOOR`, as text."""
    return f"{max(a, FLOOR) / max(b, FLOOR):.2f}"


def render(data: dict, noise: float) -> str:
    """The Markdown of ``bo_regret.md`` from the JSON the benchmark wrote."""
    args, stats = data["args"], data["stats"]
    families = [f for f in stats if f != "overall"]
    methods = list(stats["overall"])
    first = args.get("first_rep", 0)
    held_out = f", instances from {first} on" if first else ""
    scale = args.get("noise_scale", 1.0)
    louder = f", the generated families' noise x{scale:g}" if scale != 1.0 else ""
    lines = [
        f"Regret after {args['budget']} evaluations, {args['reps']} instances per family"
        f"{held_out}{louder} ({args.get('table_reps', args['reps'])} noise draws of the table; "
        "noise sd "
        f"{noise:.4f}, measured between training seeds). Per family: noise-free "
        "regret of the reported point, in loss units. Overall: regret as a fraction of "
        "each instance's loss range, all families pooled (the prototype runs in 1-D only). "
        f"Ratios: median over the best peer's median, and over random search's (regrets "
        f"below {FLOOR} count as {FLOOR}).",
        "",
        "**Median regret per family** (the last two columns: overall, normalised)",
        "",
        "| method | " + " | ".join(families) + " | overall median | overall p90 |",
        "|---|" + "---|" * (len(families) + 2),
    ]
    for m in methods:
        cells = [f"{stats[f][m]['median']:.4f}" if m in stats[f] else "n/a" for f in families]
        o = stats["overall"][m]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {o['median']:.4f} | {o['p90']:.4f} |")
    lines.append("")
    for fam in [*families, "overall"]:
        peers = [m for m in stats[fam] if not m.startswith("boresnet")]
        best_peer = min((stats[fam][m]["median"] for m in peers), default=math.nan)
        rnd = stats[fam].get("random", {}).get("median", math.nan)
        lines += [
            f"**{fam}**",
            "",
            "| method | median | p90 | mean | vs best peer | vs random | failures | at an edge |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m, s in stats[fam].items():
            lines.append(
                f"| {m} | {s['median']:.4f} | {s['p90']:.4f} | {s['mean']:.4f} | "
                f"{ratio(s['median'], best_peer)} | {ratio(s['median'], rnd)} | "
                f"{s['failures']:.1f} | {s['edge']:.1f} |"
            )
        lines.append("")
    overhead = stats["overall"].get("boresnet", {}).get("overhead_s")
    if overhead is not None:
        lines.append(f"boresnet's overhead: {overhead:.3f} s per evaluation (ask + tell).")
    if "wall_s" in data:
        lines.append(
            f"Wall time of this benchmark: {data['wall_s']} s on {args['workers']} workers."
        )
    return "\n".join(lines)


def run_fidelity(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The multi-fidelity mode: its own families and methods (``fidelity.py``)."""
    families = args.families.split(",")
    if args.families == ",".join(ALL_FAMILIES):
        families = [f"mf_{b}" for b in fidelity.BASES] + list(fidelity.LENGTH_TABLES)
    methods = args.methods.split(",")
    if args.methods == ",".join(METHODS):
        methods = list(fidelity.COMPARED)
    if unknown := [m for m in methods if m not in fidelity.METHODS]:
        parser.error(f"unknown methods {unknown}; known: {', '.join(fidelity.METHODS)}")
    known = [f"mf_{b}" for b in fidelity.BASES + fidelity.BASES_2D] + list(fidelity.LENGTH_TABLES)
    if unknown := [f for f in families if f not in known]:
        parser.error(f"unknown families {unknown}; known: {', '.join(known)}")
    lr_find: dict[str, list[float]] = {}
    for item in filter(None, args.lr_find.split(";")):
        name, _, rates = item.partition("=")
        lr_find[name] = [math.log10(float(r)) for r in rates.split(",")]
    out = Path(args.out if args.out != str(RESULTS) else RESULTS / "fidelity")
    command = "python benchmarks/bo_regret.py " + " ".join(sys.argv[1:])
    noise = Table(Path(args.table)).noise() * args.noise_scale
    print(
        fidelity.run_suite(
            families, methods, args.reps, args.table_reps, noise, lr_find, args.workers, out,
            command, tuple(int(b) for b in args.budgets.split(",")),
        )
    )  # fmt: skip


def main() -> None:
    """Run every method on every family; print and save the tables, JSON and figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(NOISE_TABLE))
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument(
        "--first-rep", type=int, default=0, help="instances first_rep .. first_rep + reps - 1"
    )
    # The table is one landscape whose only randomness is the noise: at 20 draws its
    # median was chance (Optuna GP: 0.0006 at 20, 0.0019 at 60 draws), so it gets more.
    parser.add_argument("--table-reps", type=int, default=60)
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument(
        "--noise-scale", type=float, default=1.0, help="times the seeds' noise (not the tables')"
    )
    parser.add_argument("--families", default=",".join(ALL_FAMILIES))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--render", metavar="JSON", help="only rewrite the tables of a run's JSON")
    parser.add_argument("--suite", choices=sorted(SUITES), help="a committed secondary run")
    parser.add_argument(
        "--parallel", help="asynchronous mode: comma-separated q (evaluations in flight)"
    )
    parser.add_argument(
        "--fidelity", action="store_true", help="multi-fidelity mode (benchmarks/fidelity.py)"
    )
    parser.add_argument(
        "--budgets", default="2,4,10", help="multi-fidelity mode: compute budgets, in full runs"
    )
    parser.add_argument(
        "--lr-find",
        default="",
        help="multi-fidelity mode: TABLE=LR,LR,... the rates Tuner.lr_find suggested on a table",
    )
    args = parser.parse_args()
    if args.fidelity:
        run_fidelity(args, parser)
        return
    if args.parallel:
        if args.methods == ",".join(METHODS):
            args.methods = ",".join(ASYNC_METHODS)
        if args.out == str(RESULTS):
            args.out = str(RESULTS / "async")
    if args.suite:
        for key, value in SUITES[args.suite].items():
            setattr(args, key, value)
        if args.out == str(RESULTS):  # an explicit --out wins (e.g. one per budget)
            args.out = str(RESULTS / args.suite)
    if args.render and Path(args.render).name == "fidelity.json":
        print(fidelity.render_saved(Path(args.render)))
        return
    if args.render:
        data = json.loads(Path(args.render).read_text())
        if data["args"].get("parallel"):
            text = render_async(data["stats"], data["args"])
        else:
            text = render(data, Table(Path(data["args"]["table"])).noise())
        write_text(Path(args.render).parent / "bo_regret.md", text + "\n")
        print(text)
        return

    families, methods = args.families.split(","), args.methods.split(",")
    known = [*GENERATED, "table", *TABLES]
    if unknown := [f for f in families if f not in known]:
        parser.error(f"unknown families {unknown}; known: {', '.join(known)}")
    runners = ASYNC_RUNNERS if args.parallel else RUNNERS
    if unknown := [m for m in methods if m not in runners]:
        parser.error(f"unknown methods {unknown}; known: {', '.join(runners)}")
    qs = [int(q) for q in args.parallel.split(",")] if args.parallel else [0]
    if args.parallel and min(qs) < 1:
        parser.error(f"--parallel: each q must be >= 1, got {args.parallel}")
    if not args.noise_scale > 0:
        parser.error(f"--noise-scale must be > 0, got {args.noise_scale}")
    tasks = [
        (fam, m, rep, args.budget, args.table, q, args.noise_scale)
        for fam in families
        for m in methods
        for q in qs
        for rep in range(
            args.first_rep,
            args.first_rep + (args.table_reps if fam in ("table", *TABLES) else args.reps),
        )
    ]
    if args.parallel:
        methods = [label(m, q) for q in qs for m in methods]
    started = time.perf_counter()
    with Pool(args.workers) as pool:
        rows = [r for r in pool.imap(one_run, tasks, chunksize=4) if not r.get("skipped")]
    elapsed = time.perf_counter() - started

    stats: dict[str, dict] = {}
    for fam in [*families, "overall"]:
        stats[fam] = {}
        for m in methods:
            mine = [r for r in rows if r["method"] == m and fam in (r["family"], "overall")]
            if not mine:
                continue
            key = "normalised" if fam == "overall" else "regret"
            s = summarise([r[key] for r in mine])
            s["failures"] = float(np.mean([r["failures"] for r in mine]))
            s["edge"] = float(np.mean([r["edge"] for r in mine]))
            s["overhead_s"] = float(np.mean([r["overhead"] for r in mine]))
            if args.parallel:
                s["wall"] = float(np.mean([r["wall"] for r in mine]))
            s["n"] = len(mine)
            stats[fam][m] = {k: round(v, 5) for k, v in s.items()}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"args": vars(args), "stats": stats, "wall_s": round(elapsed)}
    write_text(out / "bo_regret.json", json.dumps(data, indent=2) + "\n")
    if args.parallel:
        text = render_async(stats, vars(args))
    else:
        text = render(data, Table(Path(args.table)).noise())
    print(text)
    write_text(out / "bo_regret.md", text + "\n")

    fig, axes = plt.subplots(1, len(families) + 1, figsize=(3.2 * (len(families) + 1), 3.4))
    plotted = [m for m in methods if m.split("@")[0] == "boresnet" or not m.startswith("boresnet")]
    for ax, fam in zip(np.atleast_1d(axes), [*families, "overall"], strict=True):
        for m in plotted:
            mine = [
                r["per_k"] for r in rows if r["method"] == m and fam in (r["family"], "overall")
            ]
            if mine:
                ax.plot(
                    range(1, args.budget + 1),
                    np.median(mine, axis=0),
                    label=m,
                    lw=2.5 if m.split("@")[0] == "boresnet" else 1.0,
                )
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(fam, fontsize=9)
        ax.set_xlabel("evaluations")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("median normalised regret")
    np.atleast_1d(axes)[-1].legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(out / "bo_regret.png") as tmp:
        fig.savefig(tmp, dpi=90)


if __name__ == "__main__":
    main()
