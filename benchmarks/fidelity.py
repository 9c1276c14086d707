"""Multi-fidelity benchmark: the same learning rate for less compute.

Every landscape here is a function of (log10 lr, length): the whole schedule compressed
into a length, the longest the full one. A method spends compute (an evaluation at
length ``s`` costs ``s / full``) and reports a rate; it is scored by the noise-free
regret of that rate *at full length*, after budgets of 2, 4 and 10 full trainings.

Landscapes:
- ``length_table``: the CPU profile measured at 4 lengths (``make_lr_table.py
  --lengths``, ``benchmarks/data/lr_length_table.csv``); an evaluation replays one
  training seed's value.
- ``length_table_w8``: the same at width 8 (``lr_length_table_w8.csv``), the second
  real table.
- generated: each 1-D family of ``landscapes.py`` (cliff, bound, plateau, two_minima,
  wide) as the full-length curve, with the shapes short runs have: the whole curve
  (optimum and cliff) shifted along the rate by a random amount per halving of the
  length, the floor raised, the noise larger (x (full / s)^a), and at the shortest
  length a false dip that ranks some rates wrongly.
- generated 2-D: the same shapes on the 2-D families (``momentum``, ``lr_wd``,
  ``lr_warmup``: the rate and one more SGD hyperparameter), the shift along the rate.

Methods:
- ``boresnet_mf``: ``BayesianOptimizer`` with a ``Fidelity`` (the lengths above);
  ``boresnet_mf_*`` are ablations, one default changed;
- ``boresnet``: today's study, full evaluations only;
- ``shortest_first``: the shortest length at evenly spaced rates (a scrambled Sobol
  design in 2-D), then the best
  ``max(1, round(B / 4))`` finished at full length (Egele et al. 2023);
- ``hyperband``: Optuna's TPE with its ``HyperbandPruner``; its rungs are the lengths,
  and it pays only the increments of a run it continues. Its intermediate values are
  the compressed runs' values: a pruner watching a real full-length run sees worse
  (a high rate mid-decay looks worst), so this simulation favours it;
- ``random``: random points at full length;
- ``lr_find`` (1-D only: it tunes the rate alone): Lightning's range test plus one
  training at its suggestion. On a table: the suggestions measured with
  ``Tuner.lr_find`` on the profile (``--lr-find``); on a generated landscape, simulated
  as the rate of steepest descent of the shortest-length curve. Its cost is the range
  test's steps over a full training's, plus 1.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import optuna
import torch
from landscapes import FAMILIES, MULTI, Param, Table, bounds, grid, search_space, table_rows
from scipy.stats import binomtest, qmc

from boresnet.atomic import write_text
from boresnet.tuner import (
    BayesianOptimizer,
    SearchSpace,
    lengths,
    optimizer,
    rules,
    surrogate,
)
from boresnet.tuner.fidelity import Fidelity

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
LENGTH_TABLES = {
    "length_table": DATA / "lr_length_table.csv",
    "length_table_w8": DATA / "lr_length_table_w8.csv",
}
BASES = ["cliff", "bound", "plateau", "two_minima", "wide"]
# The 2-D generated families (landscapes.MULTI): the rate and one more hyperparameter.
BASES_2D = ["momentum", "lr_wd", "lr_warmup"]
BUDGETS = (2, 4, 10)
# The generated families' lengths, as fractions of the full one.
RELATIVE_LENGTHS = (0.125, 0.25, 0.5, 1.0)
# Two regrets closer than this are a tie in the paired comparison (a rate a few
# thousandths of a decade away on the tables).
TIE = 1e-4
# Lightning's range test: 100 steps; the CPU profile's full training: 2 x 110 steps.
RANGE_TEST_STEPS, FULL_STEPS = 100, 220


@dataclass
class MFLandscape:
    """A landscape over (coordinates, length); the first coordinate is log10 lr.

    Attributes:
        family: Its name.
        params: The searched coordinates (``landscapes.Param``), the rate first.
        lengths: The lengths, shortest first; the last is the full one.
        f: Noise-free value ``f(x, length)`` at a coordinate vector (NaN: diverged).
        sampler: One noisy evaluation ``(x, length, rng) -> value``.
        lr_find: The rates (log10) Lightning's ``lr_find`` suggests (``None``: simulate).
    """

    family: str
    params: list[Param]
    lengths: tuple[float, ...]
    f: Callable[[np.ndarray, float], float]
    sampler: Callable[[np.ndarray, float, np.random.Generator], float]
    lr_find: list[float] | None = None
    best: float = field(init=False)
    worst: float = field(init=False)

    def __post_init__(self) -> None:
        values = np.array([self.f(x, self.full) for x in grid(self.params)])
        finite = values[np.isfinite(values)]
        self.best, self.worst = float(finite.min()), float(finite.max())

    @property
    def dim(self) -> int:
        """How many coordinates are searched."""
        return len(self.params)

    @property
    def low(self) -> float:
        """Lower bound of log10 lr."""
        return self.params[0].low

    @property
    def high(self) -> float:
        """Upper bound of log10 lr."""
        return self.params[0].high

    @property
    def full(self) -> float:
        """The full length."""
        return self.lengths[-1]

    def space(self) -> SearchSpace:
        """The tuner's search space over these coordinates."""
        return search_space(self.params)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The lower and upper bounds of every coordinate."""
        return bounds(self.params)

    def regret(self, x: np.ndarray | float | None) -> float:
        """Normalised noise-free regret at full length of reporting ``x`` (``None``: worst)."""
        y = math.nan if x is None else self.f(np.atleast_1d(np.asarray(x, float)), self.full)
        y = self.worst if math.isnan(y) else y
        return (y - self.best) / max(self.worst - self.best, 1e-12)


def length_table(path: Path, family: str) -> MFLandscape:
    """A measured table at several lengths: one :class:`Table` per length."""
    rows = table_rows(path.read_text())
    lengths = tuple(sorted({float(r["epochs"]) for r in rows}))
    tables = {
        s: Table.from_rows([r for r in rows if float(r["epochs"]) == s], family) for s in lengths
    }
    seeds = min(len(t.curves) for t in tables.values())

    def f(x: np.ndarray, s: float) -> float:
        return tables[s].interp(tables[s].mean, x)

    def sample(x: np.ndarray, s: float, rng: np.random.Generator) -> float:
        return tables[s].interp(tables[s].curves[rng.integers(seeds)], x)

    axis = tables[lengths[-1]].x
    return MFLandscape(family, [Param("lr", float(axis[0]), float(axis[-1]))], lengths, f, sample)


def generated(base: str, rng: np.random.Generator, noise: float) -> MFLandscape:
    """Family ``base`` as the full-length surface, with the shapes short runs have.

    The shift moves the surface along the rate (the first coordinate); the false dip at
    the shortest length is 0.3 decades wide along the rate and as wide a fraction of
    each other range.
    """
    land = (FAMILIES if base in BASES else MULTI)[base](rng, noise)
    params = land.params
    shift = rng.uniform(-0.1, 0.3)  # decades the surface moves left per halving
    rise = rng.uniform(0.05, 0.3)  # the floor's rise per halving
    spread = rng.uniform(0.3, 0.8)  # noise x (full / s)^spread
    fake = np.array([rng.uniform(p.low, p.high) for p in params])  # the false dip's centre
    depth = rng.uniform(0.0, 0.6)
    width = np.array([0.3] + [0.3 * (p.high - p.low) / 5.0 for p in params[1:]])

    def f(x: np.ndarray, s: float) -> float:
        halvings = math.log2(1.0 / s)
        moved = np.array(x, dtype=float)
        moved[0] += shift * halvings
        y = land.f(moved)
        if math.isnan(y):
            return y
        y = y + rise * halvings
        if s == RELATIVE_LENGTHS[0]:
            y -= depth * math.exp(-0.5 * float(np.sum(((x - fake) / width) ** 2)))
        return y

    def sample(x: np.ndarray, s: float, rng: np.random.Generator) -> float:
        y = f(x, s)
        return y if math.isnan(y) else y + noise * (1.0 / s) ** spread * rng.standard_normal()

    return MFLandscape(f"mf_{base}", params, RELATIVE_LENGTHS, f, sample)


# A run: the evaluations (x, length, value), the reported coordinates, and (where it is
# not the sum of the lengths over the full one) the compute spent.
Run = tuple[list[tuple[np.ndarray, float, float]], np.ndarray | None] | tuple[list, object, float]


def run_boresnet_mf(
    land: MFLandscape,
    budget: int,
    seed: int,
    sample,
    on_step: Callable[[BayesianOptimizer, dict[str, float], float], None] | None = None,
) -> Run:
    """``BayesianOptimizer`` with the landscape's lengths as its fidelity, via ask/tell.

    ``on_step(optimizer, params, value)``, if given, sees each evaluation before it is
    told (``benchmarks/trace_study.py`` prints it).
    """
    space = land.space()
    opt = BayesianOptimizer(
        space, seed=seed, budget=budget, fidelity=Fidelity("epochs", land.lengths)
    )
    evals = []
    while not opt.done():
        p = opt.ask()
        x, s = space.to_coords(p).numpy(), p["epochs"]
        y = sample(x, s)
        if on_step is not None:
            on_step(opt, p, y)
        opt.tell(p, y, "ok" if not math.isnan(y) else "diverged")
        evals.append((x, s, y))
    best = opt.best()
    return evals, None if best is None else space.to_coords(best.params).numpy()


def variant(patches: dict[tuple[object, str], object]):
    """``run_boresnet_mf`` with module constants changed for the run (an ablation)."""

    def run(land: MFLandscape, budget: int, seed: int, sample) -> Run:
        saved = {key: getattr(*key) for key in patches}
        for (module, name), value in patches.items():
            setattr(module, name, value)
        try:
            return run_boresnet_mf(land, budget, seed, sample)
        finally:
            for (module, name), value in saved.items():
                setattr(module, name, value)

    return run


def run_boresnet(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """Today's study: ``budget`` full evaluations."""
    space = land.space()
    opt = BayesianOptimizer(space, seed=seed, budget=budget)
    evals = []
    for _ in range(budget):
        p = opt.ask()
        x = space.to_coords(p).numpy()
        y = sample(x, land.full)
        opt.tell(p, y, "ok" if not math.isnan(y) else "diverged")
        evals.append((x, land.full, y))
    best = opt.best()
    return evals, None if best is None else space.to_coords(best.params).numpy()


def best_full(evals: list[tuple[np.ndarray, float, float]], full: float) -> np.ndarray | None:
    """The best full-length observation's coordinates."""
    done = [(y, x) for x, s, y in evals if s == full and not math.isnan(y)]
    return min(done, key=lambda t: t[0])[1] if done else None


def run_shortest_first(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """The shortest length at evenly spaced points, then the best few finished in full.

    Evenly spaced: a grid with a random offset in 1-D, a scrambled Sobol design beyond.
    """
    finish = max(1, round(budget / 4))
    cost = land.lengths[0] / land.full
    count = int((budget - finish) / cost + 1e-9)
    low, high = land.bounds()
    if land.dim == 1:
        offset = np.random.default_rng(seed).uniform(0, 1)
        unit = ((np.arange(count) + offset) / count)[:, None]
    else:
        unit = qmc.Sobol(land.dim, seed=seed).random(count)
    xs = low + unit * (high - low)
    evals = [(x, land.lengths[0], sample(x, land.lengths[0])) for x in xs]
    ranked = sorted(((y, i) for i, (_, _, y) in enumerate(evals) if not math.isnan(y)))
    for _, i in ranked[:finish]:
        x = evals[i][0]
        evals.append((x, land.full, sample(x, land.full)))
    return evals, best_full(evals, land.full)


def hyperband_study(seed: int, rungs: int) -> optuna.Study:
    """TPE with ``HyperbandPruner`` over ``rungs`` lengths, reproducible for ``seed``.

    The pruner puts each trial in a bracket by a hash of the study's name: an unnamed
    study gets a random one, and the same seed would run other brackets.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=f"hyperband-{seed}",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=2),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=rungs, reduction_factor=2
        ),
    )


def run_hyperband(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """Optuna TPE with ``HyperbandPruner``, the lengths as its rungs, until the budget."""
    study = hyperband_study(seed, len(land.lengths))
    names = [p.name for p in land.params]
    dist = {p.name: optuna.distributions.FloatDistribution(p.low, p.high) for p in land.params}
    evals, spent = [], 0.0
    while spent + land.lengths[0] / land.full <= budget + 1e-9:
        trial = study.ask(dist)
        x, previous, state = np.array([trial.params[n] for n in names]), 0.0, None
        for rung, s in enumerate(land.lengths, start=1):
            step = (s - previous) / land.full
            if spent + step > budget + 1e-9:
                state = optuna.trial.TrialState.PRUNED
                break
            spent, previous = spent + step, s
            y = sample(x, s)
            evals.append((x, s, y))
            if math.isnan(y):
                state = optuna.trial.TrialState.FAIL
                break
            trial.report(y, rung)
            if trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        if state is None:
            study.tell(trial, evals[-1][2])
        else:
            study.tell(trial, state=state)
    return evals, best_full(evals, land.full), spent


def run_random(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """Random points at full length."""
    rng = np.random.default_rng(10_000 + seed)
    xs = rng.uniform(*land.bounds(), (budget, land.dim))
    evals = [(x, land.full, sample(x, land.full)) for x in xs]
    return evals, best_full(evals, land.full)


def lr_find_cost() -> float:
    """lr_find's compute in full trainings: the range test's steps, plus one training."""
    return RANGE_TEST_STEPS / FULL_STEPS + 1.0


def run_lr_find(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """The range test's suggestion, trained once in full (its cost: :func:`lr_find_cost`).

    Raises:
        ValueError: A landscape of more than the rate (``lr_find`` tunes nothing else).
    """
    if land.dim != 1:
        raise ValueError(f"lr_find tunes the rate alone; {land.family} has {land.dim} axes")
    if land.lr_find is not None:
        x = land.lr_find[seed % len(land.lr_find)]
    else:
        grid = np.linspace(land.low, land.high, 200)
        y = np.array([land.f(np.array([v]), land.lengths[0]) for v in grid])
        slope = np.gradient(np.where(np.isnan(y), np.nanmax(y), y), grid)
        x = float(grid[int(np.argmin(slope))])
    x = np.array([x])
    return [(x, land.full, sample(x, land.full))], x, lr_find_cost()


# The methods a default run compares (the ablations only when named).
COMPARED = ["boresnet_mf", "boresnet", "shortest_first", "hyperband", "random", "lr_find"]
METHODS = {
    "boresnet_mf": run_boresnet_mf,
    # Ablations of the defaults (boresnet/tuner/defaults.py, surrogate.FIDELITY_KERNEL).
    "boresnet_mf_share50": variant({(lengths, "MIN_INFORMATION_SHARE"): 0.5}),
    "boresnet_mf_share90": variant({(lengths, "MIN_INFORMATION_SHARE"): 0.9}),
    "boresnet_mf_design2": variant({(optimizer, "FIDELITY_DESIGN_PER_PARAM"): 2}),
    "boresnet_mf_design5": variant({(optimizer, "FIDELITY_DESIGN_PER_PARAM"): 5}),
    "boresnet_mf_joint": variant({(rules, "FULL_RANKING_MIN"): 10**9}),
    "boresnet_mf_matern": variant({(surrogate, "FIDELITY_KERNEL"): "matern"}),
    "boresnet": run_boresnet,
    "shortest_first": run_shortest_first,
    "hyperband": run_hyperband,
    "random": run_random,
    "lr_find": run_lr_find,
}


def make(family: str, rep: int, noise: float, lr_find: dict[str, list[float]]) -> MFLandscape:
    """Instance ``rep`` of ``family`` (the same for every method)."""
    if family in LENGTH_TABLES:
        land = length_table(LENGTH_TABLES[family], family)
        land.lr_find = lr_find.get(family)
        return land
    base = family.removeprefix("mf_")
    return generated(base, np.random.default_rng([sum(map(ord, family)), rep]), noise)


def noise_draws(family: str, rep: int) -> np.random.Generator:
    """The noise of instance ``rep``'s evaluations (the same draws for every method)."""
    return np.random.default_rng([sum(map(ord, family)), rep, 7])


def is_2d(family: str) -> bool:
    """Whether ``family`` searches the rate and one more hyperparameter."""
    return family.removeprefix("mf_") in BASES_2D


def takes(family: str, method: str) -> bool:
    """Whether ``method`` runs on ``family``: lr_find tunes nothing but the rate."""
    return not (method == "lr_find" and is_2d(family))


def one_run(task: tuple[str, str, int, int, float, dict]) -> dict:
    """One method on one instance at one budget: its regret, compute and overhead."""
    family, method, rep, budget, noise, lr_find = task
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    land = make(family, rep, noise, lr_find)
    rng = noise_draws(family, rep)
    started = time.perf_counter()
    run = METHODS[method](land, budget, rep, lambda x, s: land.sampler(x, s, rng))
    evals, reported = run[0], run[1]
    spent = run[2] if len(run) > 2 else sum(s / land.full for _, s, _ in evals)
    return {
        "family": family,
        "method": method,
        "rep": rep,
        "budget": budget,
        "regret": land.regret(reported),
        "spent": spent,
        "evaluations": len(evals),
        "full": sum(s == land.full for _, s, _ in evals),
        "seconds": time.perf_counter() - started,
    }


def groups(families: list[str]) -> dict[str, list[str]]:
    """The rows the report pools: each table alone, the generated families together.

    The 2-D families pool apart: the pooled row (the 1-D families and the second table)
    stays what the 1-D benchmark has always measured.
    """
    out = {f: [f] for f in families if f in LENGTH_TABLES}
    made = [f for f in families if f not in LENGTH_TABLES and not is_2d(f)]
    if made:
        out["generated"] = made
    if flat := [f for f in families if is_2d(f)]:
        out["generated 2-D"] = flat
    pooled = [f for f in families if f != "length_table" and not is_2d(f)]
    if made and len(pooled) > len(made):
        out["pooled (generated + second table)"] = pooled
    return out


def statistics(rows: list[dict], families: list[str], methods: list[str]) -> dict:
    """Median, p90 and mean compute per group, method and budget."""
    stats: dict = {}
    for name, members in groups(families).items():
        stats[name] = {}
        for m in methods:
            stats[name][m] = {}
            for b in sorted({r["budget"] for r in rows}):
                mine = [r for r in rows if r["family"] in members and r["method"] == m]
                mine = [r for r in mine if r["budget"] == b]
                if not mine:
                    continue
                regret = np.array([r["regret"] for r in mine])
                stats[name][m][str(b)] = {
                    "median": round(float(np.median(regret)), 5),
                    "p90": round(float(np.percentile(regret, 90)), 5),
                    "spent": round(float(np.mean([r["spent"] for r in mine])), 3),
                    "full": round(float(np.mean([r["full"] for r in mine])), 2),
                    "seconds": round(float(np.mean([r["seconds"] for r in mine])), 2),
                    "n": len(mine),
                }
    return stats


def paired(rows: list[dict], families: list[str], methods: list[str]) -> dict:
    """Each method against today's study on the same instances: wins, losses and a p-value.

    An instance is a landscape, a draw and a budget; both methods see the same noise.
    The p-value is the two-sided sign test (scipy's ``binomtest``) of wins against
    losses, ties (:data:`TIE`) left out: how often chance alone gives a split this uneven.
    """
    regret = {(r["family"], r["rep"], r["budget"], r["method"]): r["regret"] for r in rows}
    out: dict = {}
    for name, members in groups(families).items():
        out[name] = {}
        for m in methods:
            if m == "boresnet":
                continue
            out[name][m] = {}
            for b in sorted({r["budget"] for r in rows}):
                keys = [k for k in regret if k[0] in members and k[2] == b and k[3] == m]
                diffs = [
                    regret[k] - regret[(*k[:3], "boresnet")]
                    for k in keys
                    if (*k[:3], "boresnet") in regret
                ]
                if not diffs:
                    continue
                wins = sum(bool(d < -TIE) for d in diffs)  # (numpy scalars: JSON takes ints)
                losses = sum(bool(d > TIE) for d in diffs)
                p = binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
                out[name][m][str(b)] = {
                    "wins": wins, "losses": losses, "ties": len(diffs) - wins - losses,
                    "p": round(float(p), 4),
                }  # fmt: skip
    return out


def render_paired(comparisons: dict) -> list[str]:
    """The paired comparison's section of the report (empty without today's study)."""
    if not any(comparisons.values()):
        return []
    lines = [
        "",
        "## Paired against today's study",
        "",
        "Instances where a method's regret is lower (wins) or higher (losses) than that of"
        " today's study on the same landscape, draw and budget, ties left out, and the"
        " two-sided sign test's p-value. A median can move with a handful of instances;"
        " p < 0.05 says the split is unlikely to be chance.",
    ]
    for name, methods in comparisons.items():
        budgets = sorted({b for m in methods.values() for b in m}, key=int)
        lines += ["", f"### {name}", ""]
        head = " | ".join(f"B={b}: wins / losses (p)" for b in budgets)
        lines += [f"| method | {head} |", "|---" * (1 + len(budgets)) + "|"]
        for m, per in methods.items():
            cells = [
                f"{per[b]['wins']} / {per[b]['losses']} ({per[b]['p']:.3f})" if b in per else "-"
                for b in budgets
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def render(stats: dict, command: str, comparisons: dict | None = None) -> str:
    """The Markdown report: one table per group, a column pair per budget."""
    flat = "generated 2-D" in stats
    lines = [
        "# Multi-fidelity: regret at full length for a compute budget",
        "",
        f"`{command}`",
        "",
        "Normalised regret at full length (median / p90) after a budget of B full trainings"
        " of compute; `x` is the median over boresnet's at the same B (lower is better);"
        " `spent` the mean compute used."
        + (
            f" lr_find always spends {lr_find_cost():.2f} (range test + one training)."
            if any("lr_find" in methods for methods in stats.values())
            else ""
        )
        + (" The 2-D families have no lr_find: it tunes the rate alone." if flat else ""),
    ]
    for name, methods in stats.items():
        budgets = sorted({b for m in methods.values() for b in m}, key=int)
        lines += ["", f"## {name}", ""]
        head = " | ".join(f"B={b}: median / p90 (x) | spent" for b in budgets)
        lines += [f"| method | {head} |", "|---" * (1 + 2 * len(budgets)) + "|"]
        for m, per in methods.items():
            cells = []
            for b in budgets:
                if b not in per:
                    cells += ["-", "-"]
                    continue
                base = methods.get("boresnet", {}).get(b, {}).get("median")
                x = (
                    f" ({max(per[b]['median'], 1e-4) / max(base, 1e-4):.2f})"
                    if base is not None
                    else ""
                )
                median, p90 = per[b]["median"], per[b]["p90"]
                cells += [f"{median:.4f} / {p90:.4f}{x}", f"{per[b]['spent']:.2f}"]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines + render_paired(comparisons or {}))


def run_suite(
    families: list[str],
    methods: list[str],
    reps: int,
    table_reps: int,
    noise: float,
    lr_find: dict[str, list[float]],
    workers: int,
    out: Path,
    command: str,
    budgets: tuple[int, ...] = BUDGETS,
) -> str:
    """Run every method on every instance at every budget; write and return the report."""
    tasks = [
        (fam, m, rep, b, noise, lr_find)
        for fam in families
        for rep in range(table_reps if fam in LENGTH_TABLES else reps)
        for b in budgets
        for m in methods
        if takes(fam, m)
    ]
    started = time.perf_counter()
    with Pool(workers) as pool:
        rows = list(pool.imap_unordered(one_run, tasks, chunksize=2))
    stats = statistics(rows, families, methods)
    comparisons = paired(rows, families, methods)
    footer = f"{len(tasks)} runs in {time.perf_counter() - started:.0f} s on {workers} workers."
    text = render(stats, command, comparisons) + f"\n\n{footer}"
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "command": command,
        "stats": stats,
        "paired": comparisons,
        "footer": footer,
        "rows": rows,
    }
    write_text(out / "fidelity.json", json.dumps(data, indent=1) + "\n")
    write_text(out / "fidelity.md", text + "\n")
    return text


def render_saved(path: Path) -> str:
    """Rewrite the report beside a run's ``fidelity.json`` from its rows; return it."""
    data = json.loads(path.read_text())
    rows = data["rows"]
    families = list(dict.fromkeys(r["family"] for r in rows))
    methods = list(data["stats"][next(iter(data["stats"]))])
    comparisons = paired(rows, families, methods)
    text = render(data["stats"], data["command"], comparisons) + f"\n\n{data['footer']}"
    write_text(path.with_name("fidelity.md"), text + "\n")
    return text
