"""Tuner quality: boresnet against its peers on the tabulated real objective.

Each method gets ``--budget`` evaluations of the CPU profile's validation loss, replayed
from ``benchmarks/data/lr_table.csv``: an evaluation at a learning rate returns one
randomly drawn training seed's measurement, interpolated in log10(lr), so it is as noisy
as a real trial. A method is scored by the simple regret of the point it would report
(its best observation), measured on the table's mean curve.

Usage::

    python benchmarks/bo_regret.py [--reps 50] [--methods boresnet,random,...]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from boresnet.config import from_dict
from boresnet.study import make_optimizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ["boresnet", "random", "grid", "tpe", "tpe_short", "gp", "gp_short", "prototype"]


class Table:
    """The measured objective: per-seed curves and their mean over log10(lr)."""

    def __init__(self, path: Path) -> None:
        rows = [
            r
            for r in csv.DictReader(
                line for line in path.read_text().splitlines() if not line.startswith("#")
            )
        ]
        self.x = np.array(sorted({float(r["log10_lr"]) for r in rows}))
        seeds = sorted({int(r["seed"]) for r in rows})
        self.curves = np.full((len(seeds), len(self.x)), np.nan)
        for r in rows:
            if r["status"] == "ok" and r["objective"] not in ("", "None"):
                i, j = (
                    seeds.index(int(r["seed"])),
                    int(np.argmin(abs(self.x - float(r["log10_lr"])))),
                )
                self.curves[i, j] = float(r["objective"])
        complete = ~np.isnan(self.curves).all(axis=1)
        self.curves = self.curves[complete]
        # A learning rate that diverged for any seed counts as diverged on the mean curve.
        self.mean = self.curves.mean(axis=0)
        self.best = float(np.nanmin(self.mean))
        self.low, self.high = float(self.x[0]), float(self.x[-1])

    def _interp(self, curve: np.ndarray, x: float) -> float:
        j = int(np.clip(np.searchsorted(self.x, x) - 1, 0, len(self.x) - 2))
        a, b = curve[j], curve[j + 1]
        t = (x - self.x[j]) / (self.x[j + 1] - self.x[j])
        nearest = a if t < 0.5 else b
        if math.isnan(nearest):
            return math.nan  # diverged there
        if math.isnan(a) or math.isnan(b):
            return float(nearest)
        return float(a + t * (b - a))

    def regret(self, x: float) -> float:
        """Regret of reporting log10(lr)=x: its mean-curve value minus the best."""
        value = self._interp(self.mean, x)
        return (float(np.nanmax(self.mean)) if math.isnan(value) else value) - self.best

    def sample(self, x: float, rng: np.random.Generator) -> float:
        """One noisy evaluation: a random seed's curve at x (NaN = diverged)."""
        return self._interp(self.curves[rng.integers(len(self.curves))], x)


Run = tuple[list[float], list[float], float]  # xs evaluated, values, overhead seconds


def run_boresnet(
    f: Callable[[float], float], table: Table, budget: int, seed: int, _, **search
) -> Run:
    """The BayesianOptimizer of ``boresnet bo`` with the CPU profile's settings, via ask/tell.

    ``search`` overrides fields of ``config.search`` (the ablations of the defaults).
    """
    config = from_dict(yaml.safe_load((ROOT / "configs" / "cpu.yaml").read_text()))
    config.seed = seed
    for key, value in search.items():
        setattr(config.search, key, value)
    opt = make_optimizer(config)
    xs, ys, overhead = [], [], 0.0
    for _ in range(budget):
        t = time.perf_counter()
        p = opt.ask()
        overhead += time.perf_counter() - t
        x = math.log10(p["lr"])
        y = f(x)
        t = time.perf_counter()
        opt.tell(p, None if math.isnan(y) else y, "ok" if not math.isnan(y) else "diverged")
        overhead += time.perf_counter() - t
        xs.append(x)
        ys.append(y)
    return xs, ys, overhead


def run_random(f, table: Table, budget: int, seed: int, _) -> Run:
    """Log-uniform random search."""
    rng = np.random.default_rng(10_000 + seed)
    xs = list(rng.uniform(table.low, table.high, budget))
    return xs, [f(x) for x in xs], 0.0


def run_grid(f, table: Table, budget: int, seed: int, _) -> Run:
    """A fixed log-spaced grid over the range."""
    xs = list(np.linspace(table.low, table.high, budget))
    return xs, [f(x) for x in xs], 0.0


def run_optuna(kind: str, startup: int | None):
    """An Optuna sampler (TPE or GP), with its default or a short start-up design."""

    def run(f, table: Table, budget: int, seed: int, _) -> Run:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        kwargs = {"seed": seed} | ({"n_startup_trials": startup} if startup else {})
        sampler = (
            optuna.samplers.TPESampler(**kwargs)
            if kind == "tpe"
            else optuna.samplers.GPSampler(**kwargs)
        )
        study = optuna.create_study(direction="minimize", sampler=sampler)
        dist = {"x": optuna.distributions.FloatDistribution(table.low, table.high)}
        xs, ys, overhead = [], [], 0.0
        for _ in range(budget):
            t = time.perf_counter()
            trial = study.ask(dist)
            overhead += time.perf_counter() - t
            x = trial.params["x"]
            y = f(x)
            t = time.perf_counter()
            if math.isnan(y):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, y)
            overhead += time.perf_counter() - t
            xs.append(x)
            ys.append(y)
        return xs, ys, overhead

    return run


def run_prototype(f, table: Table, budget: int, seed: int, steps: int) -> Run:
    """The original prototype's strategy, re-implemented with GPyTorch.

    Zero-noise GP (jitter 1e-5), Matern-3/2, outputscale and lengthscale restarted at
    0.5/0.5 and refitted each iteration by ``steps`` Adam steps (lr 0.005) on the marginal
    likelihood, raw targets, EI maximised over a 500-point grid, first point at -3.
    """
    import torch

    from boresnet.prototype import prototype_ei, prototype_gp

    grid = torch.linspace(table.low, table.high, 500, dtype=torch.double)
    xs, ys, overhead = [-3.0], [f(-3.0)], 0.0
    while len(xs) < budget:
        t = time.perf_counter()
        finite = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
        worst = max((y for _, y in finite), default=0.0)
        X = torch.tensor(xs, dtype=torch.double)
        Y = torch.tensor([worst if math.isnan(y) else y for y in ys], dtype=torch.double)
        model = prototype_gp(X, Y, steps)
        ei = prototype_ei(model, grid, float(Y.min()))
        x = float(grid[int(torch.argmax(ei))])
        overhead += time.perf_counter() - t
        xs.append(x)
        ys.append(f(x))
    return xs, ys, overhead


RUNNERS = {
    "boresnet": run_boresnet,
    "random": run_random,
    "grid": run_grid,
    "tpe": run_optuna("tpe", None),
    "tpe_short": run_optuna("tpe", 2),
    "gp": run_optuna("gp", None),
    "gp_short": run_optuna("gp", 2),
    "prototype": run_prototype,
    # Ablations of boresnet's defaults (run with --methods ...).
    "boresnet_n_init3": functools.partial(run_boresnet, n_init=3),
    "boresnet_log": functools.partial(run_boresnet, transform="log"),
    "boresnet_log_n_init3": functools.partial(run_boresnet, transform="log", n_init=3),
    "boresnet_ei": functools.partial(run_boresnet, acquisition="ei"),
}


def best_reported(xs: list[float], ys: list[float], k: int) -> float | None:
    """The point a method reports after k evaluations: its best finite observation."""
    pairs = [(y, x) for x, y in zip(xs[:k], ys[:k], strict=True) if not math.isnan(y)]
    return min(pairs)[1] if pairs else None


def main() -> None:
    """Run every method ``--reps`` times; print and save the table, JSON and figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(ROOT / "benchmarks" / "data" / "lr_table.csv"))
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--prototype-steps", type=int, default=400)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    table = Table(Path(args.table))
    worst = float(np.nanmax(table.mean)) - table.best
    methods = args.methods.split(",")
    stats, curves = {}, {}
    for method in methods:
        finals, overheads, per_k = [], [], np.zeros((args.reps, args.budget))
        edges = []
        for rep in range(args.reps):
            rng = np.random.default_rng(rep)
            xs, ys, overhead = RUNNERS[method](
                lambda x, rng=rng: table.sample(x, rng),
                table,
                args.budget,
                rep,
                args.prototype_steps,
            )
            for k in range(1, args.budget + 1):
                x = best_reported(xs, ys, k)
                per_k[rep, k - 1] = worst if x is None else table.regret(x)
            finals.append(per_k[rep, -1])
            overheads.append(overhead / args.budget)
            # Evaluations within a tenth of a decade of either bound of the range.
            edges.append(sum(min(x - table.low, table.high - x) < 0.1 for x in xs))
        finals_a = np.array(finals)
        stats[method] = {
            "mean": round(float(finals_a.mean()), 5),
            "median": round(float(np.median(finals_a)), 5),
            "p90": round(float(np.percentile(finals_a, 90)), 5),
            "within_0.01": round(float(np.mean(finals_a <= 0.01)), 3),
            "overhead_s": round(float(np.mean(overheads)), 4),
            "edge_evals": round(float(np.mean(edges)), 2),
        }
        curves[method] = np.median(per_k, axis=0).tolist()
        print(f"{method:>10}: {stats[method]}", flush=True)

    head = (
        "| method | mean | median | p90 | within 0.01 | evaluations at an edge | overhead s/iter |"
    )
    lines = [
        f"Simple regret after {args.budget} evaluations, {args.reps} repetitions "
        f"(table: {Path(args.table).name}, best mean objective {table.best:.4f}).",
        "",
        head,
        "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        s = stats[m]
        lines.append(
            f"| {m} | {s['mean']:.4f} | {s['median']:.4f} | {s['p90']:.4f} | "
            f"{s['within_0.01']:.2f} | {s['edge_evals']:.1f} | {s['overhead_s']:.3f} |"
        )
    text = "\n".join(lines)
    print("\n" + text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bo_regret.md").write_text(text + "\n")
    (out / "bo_regret.json").write_text(json.dumps(stats, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for m in methods:
        ax.plot(
            range(1, args.budget + 1),
            curves[m],
            marker="o",
            ms=3,
            label=m,
            lw=2.5 if m == "boresnet" else 1.2,
        )
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("median simple regret")
    ax.set_title(f"Median regret, {args.reps} repetitions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "bo_regret.png", dpi=100)


if __name__ == "__main__":
    main()
