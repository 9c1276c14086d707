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
  (optimum and cliff) shifted by a random amount per halving of the length, the floor
  raised, the noise larger (x (full / s)^a), and at the shortest length a false dip
  that ranks some rates wrongly.

Methods:
- ``boresnet_mf``: ``BayesianOptimizer`` with a ``Fidelity`` (the lengths above);
  ``boresnet_mf_*`` are ablations, one default changed;
- ``boresnet``: today's study, full evaluations only;
- ``shortest_first``: the shortest length at evenly spaced rates, then the best
  ``max(1, round(B / 4))`` finished at full length (Egele et al. 2023);
- ``hyperband``: Optuna's TPE with its ``HyperbandPruner``; its rungs are the lengths,
  and it pays only the increments of a run it continues. Its intermediate values are
  the compressed runs' values: a pruner watching a real full-length run sees worse
  (a high rate mid-decay looks worst), so this simulation favours it;
- ``random``: random rates at full length;
- ``lr_find``: Lightning's range test plus one training at its suggestion. On a table:
  the suggestions measured with ``Tuner.lr_find`` on the profile (``--lr-find``); on a
  generated landscape, simulated as the rate of steepest descent of the shortest-length
  curve. Its cost is the range test's steps over a full training's, plus 1.
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
from landscapes import FAMILIES, Table, table_rows
from scipy.stats import binomtest

from boresnet.atomic import write_text
from boresnet.tuner import (
    BayesianOptimizer,
    ParamSpec,
    SearchSpace,
    lengths,
    optimizer,
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
    """A landscape over (log10 lr, length).

    Attributes:
        family: Its name.
        low: Lower bound of log10 lr.
        high: Upper bound.
        lengths: The lengths, shortest first; the last is the full one.
        f: Noise-free value ``f(x, length)`` (NaN: training diverged).
        sampler: One noisy evaluation ``(x, length, rng) -> value``.
        lr_find: The rate (log10) Lightning's ``lr_find`` suggests (``None``: simulate).
    """

    family: str
    low: float
    high: float
    lengths: tuple[float, ...]
    f: Callable[[float, float], float]
    sampler: Callable[[float, float, np.random.Generator], float]
    lr_find: list[float] | None = None
    best: float = field(init=False)
    worst: float = field(init=False)

    def __post_init__(self) -> None:
        grid = np.linspace(self.low, self.high, 2001)
        values = np.array([self.f(x, self.full) for x in grid])
        finite = values[np.isfinite(values)]
        self.best, self.worst = float(finite.min()), float(finite.max())

    @property
    def full(self) -> float:
        """The full length."""
        return self.lengths[-1]

    def regret(self, x: float | None) -> float:
        """Normalised noise-free regret at full length of reporting ``x`` (``None``: worst)."""
        y = math.nan if x is None else self.f(x, self.full)
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

    def f(x: float, s: float) -> float:
        return tables[s].interp(tables[s].mean, [x])

    def sample(x: float, s: float, rng: np.random.Generator) -> float:
        return tables[s].interp(tables[s].curves[rng.integers(seeds)], [x])

    axis = tables[lengths[-1]].x
    return MFLandscape(family, float(axis[0]), float(axis[-1]), lengths, f, sample)


def generated(base: str, rng: np.random.Generator, noise: float) -> MFLandscape:
    """Family ``base`` as the full-length curve, with the shapes short runs have."""
    land = FAMILIES[base](rng, noise)
    p = land.params[0]
    shift = rng.uniform(-0.1, 0.3)  # decades the curve moves left per halving
    rise = rng.uniform(0.05, 0.3)  # the floor's rise per halving
    spread = rng.uniform(0.3, 0.8)  # noise x (full / s)^spread
    fake = rng.uniform(p.low, p.high)  # the shortest length's false dip
    depth = rng.uniform(0.0, 0.6)

    def f(x: float, s: float) -> float:
        halvings = math.log2(1.0 / s)
        y = land.f(np.array([x + shift * halvings]))
        if math.isnan(y):
            return y
        y = y + rise * halvings
        if s == RELATIVE_LENGTHS[0]:
            y -= depth * math.exp(-0.5 * ((x - fake) / 0.3) ** 2)
        return y

    def sample(x: float, s: float, rng: np.random.Generator) -> float:
        y = f(x, s)
        return y if math.isnan(y) else y + noise * (1.0 / s) ** spread * rng.standard_normal()

    return MFLandscape(f"mf_{base}", p.low, p.high, RELATIVE_LENGTHS, f, sample)


# A run: the evaluations (x, length, value), the reported log10 lr, and (where it is not
# the sum of the lengths over the full one) the compute spent.
Run = tuple[list[tuple[float, float, float]], float | None] | tuple[list, float | None, float]


def run_boresnet_mf(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """``BayesianOptimizer`` with the landscape's lengths as its fidelity, via ask/tell."""
    space = SearchSpace([ParamSpec("lr", 10**land.low, 10**land.high)])
    opt = BayesianOptimizer(
        space, seed=seed, budget=budget, fidelity=Fidelity("epochs", land.lengths)
    )
    evals = []
    while not opt.done():
        p = opt.ask()
        x, s = math.log10(p["lr"]), p["epochs"]
        y = sample(x, s)
        opt.tell(p, y, "ok" if not math.isnan(y) else "diverged")
        evals.append((x, s, y))
    best = opt.best()
    return evals, None if best is None else math.log10(best.params["lr"])


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
    space = SearchSpace([ParamSpec("lr", 10**land.low, 10**land.high)])
    opt = BayesianOptimizer(space, seed=seed, budget=budget)
    evals = []
    for _ in range(budget):
        p = opt.ask()
        x = math.log10(p["lr"])
        y = sample(x, land.full)
        opt.tell(p, y, "ok" if not math.isnan(y) else "diverged")
        evals.append((x, land.full, y))
    best = opt.best()
    return evals, None if best is None else math.log10(best.params["lr"])


def best_full(evals: list[tuple[float, float, float]], full: float) -> float | None:
    """The best full-length observation's rate."""
    done = [(y, x) for x, s, y in evals if s == full and not math.isnan(y)]
    return min(done)[1] if done else None


def run_shortest_first(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """The shortest length at evenly spaced rates, then the best few finished in full."""
    finish = max(1, round(budget / 4))
    cost = land.lengths[0] / land.full
    count = int((budget - finish) / cost + 1e-9)
    offset = np.random.default_rng(seed).uniform(0, 1)
    xs = land.low + (np.arange(count) + offset) / count * (land.high - land.low)
    evals = [(float(x), land.lengths[0], sample(float(x), land.lengths[0])) for x in xs]
    ranked = sorted((y, x) for x, _, y in evals if not math.isnan(y))
    for _, x in ranked[:finish]:
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
    dist = {"x": optuna.distributions.FloatDistribution(land.low, land.high)}
    evals, spent = [], 0.0
    while spent + land.lengths[0] / land.full <= budget + 1e-9:
        trial = study.ask(dist)
        x, previous, state = trial.params["x"], 0.0, None
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
    """Random rates at full length."""
    rng = np.random.default_rng(10_000 + seed)
    evals = [(float(x), land.full, 0.0) for x in rng.uniform(land.low, land.high, budget)]
    evals = [(x, s, sample(x, s)) for x, s, _ in evals]
    return evals, best_full(evals, land.full)


def lr_find_cost() -> float:
    """lr_find's compute in full trainings: the range test's steps, plus one training."""
    return RANGE_TEST_STEPS / FULL_STEPS + 1.0


def run_lr_find(land: MFLandscape, budget: int, seed: int, sample) -> Run:
    """The range test's suggestion, trained once in full (its cost: :func:`lr_find_cost`)."""
    if land.lr_find is not None:
        x = land.lr_find[seed % len(land.lr_find)]
    else:
        grid = np.linspace(land.low, land.high, 200)
        y = np.array([land.f(v, land.lengths[0]) for v in grid])
        slope = np.gradient(np.where(np.isnan(y), np.nanmax(y), y), grid)
        x = float(grid[int(np.argmin(slope))])
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
    "boresnet_mf_joint": variant({(optimizer, "FULL_RANKING_MIN"): 10**9}),
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


def one_run(task: tuple[str, str, int, int, float, dict]) -> dict:
    """One method on one instance at one budget: its regret, compute and overhead."""
    family, method, rep, budget, noise, lr_find = task
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    land = make(family, rep, noise, lr_find)
    rng = np.random.default_rng([sum(map(ord, family)), rep, 7])
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
    """The rows the report pools: each table alone, the generated families together."""
    out = {f: [f] for f in families if f in LENGTH_TABLES}
    made = [f for f in families if f not in LENGTH_TABLES]
    if made:
        out["generated"] = made
    pooled = [f for f in families if f != "length_table"]
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
    lines = [
        "# Multi-fidelity: regret at full length for a compute budget",
        "",
        f"`{command}`",
        "",
        "Normalised regret at full length (median / p90) after a budget of B full trainings"
        " of compute; `x` is the median over boresnet's at the same B (lower is better);"
        " `spent` the mean compute used. lr_find always spends"
        f" {lr_find_cost():.2f} (range test + one training).",
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
