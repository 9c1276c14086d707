"""Generated learning-rate landscapes: the shapes real validation-loss curves have.

Every family draws a new instance from a seed. An instance is a noise-free function of
search coordinates (log10 of the learning rate, and momentum for the 2-D family) that
returns NaN where training diverges; the benchmark adds noise of the size training
seeds give (measured on ``benchmarks/data/lr_table.csv``) and scores a method by the
noise-free value of the point it reports.

Families:

- ``cliff``: a valley whose optimum lies next to a divergence cliff (NaN beyond a random
  threshold within 0.3 decades above the optimum);
- ``bound``: a valley whose optimum lies at, or up to half a decade beyond, a bound;
- ``plateau``: a flat plateau over three decades and more, with one narrow, better basin;
- ``two_minima``: two basins of different depth, at least 1.5 decades apart;
- ``wide``: an 8-decade range with the valley and its cliff somewhere inside;
- ``momentum``: 2-D, lr x momentum, the loss a function of lr / (1 - momentum);
- ``table``: the measured CPU-profile curve (one training seed's curve per call);
- ``lr_momentum_table``: 2-D, the CPU profile measured on a grid of learning rates x
  momenta (``benchmarks/data/lr_momentum_table.csv``).

Several SGD hyperparameters (``MULTI``, with ``momentum``), each with a
divergence cliff and the shapes their interactions have:

- ``lr_wd``: lr x weight decay, the regularisation set by the product lr * wd (a
  diagonal valley in log-log), the cliff in lr;
- ``lr_warmup``: lr x warm-up fraction, a longer warm-up moving the cliff, and the
  optimum just below it, to higher rates while costing training time;
- ``lr_mom_wd``: 3-D, lr x momentum x weight decay, the loss a valley in the effective
  rate lr / (1 - momentum) and in the regularisation effective rate * wd.

Classic test functions (``CLASSIC``, not in the default run: they are not learning-rate
curves, but tuners are judged on them too), each stretched over the learning-rate
range (and momentum's): ``forrester`` (a deep minimum and a local one; negative
values), ``gramacy_lee`` (oscillating, its optimum near the lower bound; negative
values), ``levy`` (many local minima, the optimum 0) and ``six_hump_camel`` (2-D, two
global and four local minima; negative values). Their formulas are the standard ones
(Surjanovic & Bingham's Virtual Library of Simulation Experiments); an instance is the
same function every time, with its own noise draws.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boresnet.training.trial import BLOWN_UP_LOSS
from boresnet.tuner import ParamSpec, SearchSpace

CHANCE = 2.30  # cross-entropy of a 10-class guess: what a model that learnt nothing scores


@dataclass
class Param:
    """One searched coordinate: its name, bounds (in coordinates) and scale."""

    name: str
    low: float
    high: float
    log: bool = True


def bounds(params: list[Param]) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper bounds of every coordinate."""
    return np.array([p.low for p in params]), np.array([p.high for p in params])


def search_space(params: list[Param]) -> SearchSpace:
    """The tuner's search space over these coordinates (a log one's bounds as rates)."""
    return SearchSpace(
        [
            ParamSpec(p.name, 10**p.low, 10**p.high, "log")
            if p.log
            else ParamSpec(p.name, p.low, p.high, "linear")
            for p in params
        ]
    )


def grid(params: list[Param]) -> np.ndarray:
    """``(n, d)`` points evenly spread over the coordinates, where best and worst are found."""
    n = {1: 2001, 2: 121}.get(len(params), 41)  # 3-D: 41**3 = 68,921 points
    axes = [np.linspace(p.low, p.high, n) for p in params]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


@dataclass
class Landscape:
    """One instance: the space, a noise-free objective, and a noisy sampler.

    Attributes:
        family: Family name.
        params: The searched coordinates.
        f: Noise-free objective of a coordinate vector (NaN: training diverged).
        sampler: One noisy evaluation ``(x, rng) -> value`` (default: ``f`` plus noise).
        noise: Standard deviation of the evaluation noise.
    """

    family: str
    params: list[Param]
    f: object
    noise: float
    sampler: object = None

    def __post_init__(self) -> None:
        values = np.array([self.f(x) for x in grid(self.params)])
        finite = values[np.isfinite(values)]
        self.best = float(finite.min())
        self.worst = float(finite.max())

    def sample(self, x: np.ndarray, rng: np.random.Generator) -> float:
        """One noisy evaluation at ``x`` (NaN where training diverges)."""
        if self.sampler is not None:
            return float(self.sampler(x, rng))
        y = self.f(x)
        return y if math.isnan(y) else float(y + self.noise * rng.standard_normal())

    def regret(self, x: np.ndarray | None) -> float:
        """Noise-free regret of reporting ``x`` (``None``: reported nothing, the worst)."""
        if x is None:
            return self.worst - self.best
        y = self.f(x)
        return (self.worst if math.isnan(y) else y) - self.best

    def normalised(self, regret: float) -> float:
        """Regret as a fraction of the instance's range of finite values."""
        return regret / max(self.worst - self.best, 1e-12)


def _valley(x: float, opt: float, floor: float, left_width: float, rise: float) -> float:
    """A learning-rate curve around ``opt``: undertrained to the left, worse to the right.

    To the left the loss climbs in a sigmoid towards chance (too small a rate learns
    nothing in the budget), to the right it rises quadratically (too large a rate).
    """
    left = (CHANCE - floor) / (1 + math.exp((x - (opt - 3 * left_width)) / left_width))
    right = rise * max(x - opt, 0.0) ** 2
    return min(floor + left + right, CHANCE + 0.05)


def _valley_with_cliff(
    rng: np.random.Generator,
    noise: float,
    family: str,
    optimum: tuple[float, float],
    gap: tuple[float, float],
    bounds: tuple[float, float],
) -> Landscape:
    """A valley with its optimum drawn from ``optimum`` and a cliff ``gap`` above it."""
    opt = rng.uniform(*optimum)
    edge = opt + rng.uniform(*gap)
    floor, lw, rise = rng.uniform(0.08, 0.2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 3.0)

    def f(x: np.ndarray) -> float:
        return math.nan if x[0] > edge else _valley(x[0], opt, floor, lw, rise)

    return Landscape(family, [Param("lr", *bounds)], f, noise)


def cliff(rng: np.random.Generator, noise: float) -> Landscape:
    """Valley whose optimum lies right below a divergence cliff (NaN above it)."""
    return _valley_with_cliff(rng, noise, "cliff", (-1.5, 0.5), (0.02, 0.3), (-4.0, 1.0))


def bound(rng: np.random.Generator, noise: float) -> Landscape:
    """Valley whose optimum lies at, or up to half a decade beyond, a bound."""
    low, high = -4.0, 0.0
    upper = rng.random() < 0.7  # a range that stops short of the optimum: usually above
    opt = high + rng.uniform(-0.05, 0.5) if upper else low - rng.uniform(-0.05, 0.5)
    floor, lw, rise = rng.uniform(0.08, 0.2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 3.0)
    if upper:
        return Landscape(
            "bound",
            [Param("lr", low, high)],
            lambda x: _valley(x[0], opt, floor, lw, rise),
            noise,
        )
    # Mirror image: the loss falls towards the lower bound.
    return Landscape(
        "bound",
        [Param("lr", low, high)],
        lambda x: _valley(2 * opt - x[0], opt, floor, lw, rise),
        noise,
    )


def plateau(rng: np.random.Generator, noise: float) -> Landscape:
    """A flat plateau over 3+ decades, and one narrow basin far better than it."""
    centre, width = rng.uniform(-0.8, 0.6), rng.uniform(0.12, 0.3)
    level, floor = rng.uniform(1.9, 2.25), rng.uniform(0.08, 0.3)

    def f(x: np.ndarray) -> float:
        slope = 0.01 * (x[0] + 4.0)  # a slight drift, smaller than the noise
        return level + slope - (level - floor) * math.exp(-0.5 * ((x[0] - centre) / width) ** 2)

    return Landscape("plateau", [Param("lr", -4.0, 1.0)], f, noise)


def two_minima(rng: np.random.Generator, noise: float) -> Landscape:
    """Two basins of different depth, at least 1.5 decades apart, either order."""
    first = rng.uniform(-3.5, -1.5)
    second = rng.uniform(first + 1.5, 0.7)
    widths = rng.uniform(0.2, 0.45, 2)
    deep, shallow = rng.uniform(1.8, 2.1), rng.uniform(1.2, 1.6)
    depths = (deep, shallow) if rng.random() < 0.5 else (shallow, deep)

    def f(x: np.ndarray) -> float:
        wells = sum(
            d * math.exp(-0.5 * ((x[0] - m) / w) ** 2)
            for d, m, w in zip(depths, (first, second), widths, strict=True)
        )
        return CHANCE - wells + 0.02 * (x[0] + 1.5) ** 2

    return Landscape("two_minima", [Param("lr", -4.0, 1.0)], f, noise)


def wide(rng: np.random.Generator, noise: float) -> Landscape:
    """An 8-decade range (1e-6 to 100) with a valley and a cliff somewhere inside."""
    return _valley_with_cliff(rng, noise, "wide", (-3.5, 0.5), (0.2, 1.0), (-6.0, 2.0))


def momentum(rng: np.random.Generator, noise: float) -> Landscape:
    """2-D: lr x momentum, the loss a valley in the effective rate lr / (1 - momentum)."""
    opt = rng.uniform(-0.5, 0.8)
    edge = opt + rng.uniform(0.1, 0.5)
    best_m = rng.uniform(0.5, 0.95)
    floor, lw, rise = rng.uniform(0.08, 0.2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 3.0)

    def f(x: np.ndarray) -> float:
        eff = x[0] - math.log10(1.0 - x[1])
        if eff > edge:
            return math.nan
        return min(_valley(eff, opt, floor, lw, rise) + 0.3 * (x[1] - best_m) ** 2, CHANCE)

    return Landscape(
        "momentum", [Param("lr", -4.0, 1.0), Param("momentum", 0.0, 0.99, log=False)], f, noise
    )


WD = Param("weight_decay", -6.0, -2.0)
WARMUP = Param("warmup_fraction", 0.01, 0.5, log=False)


def lr_wd(rng: np.random.Generator, noise: float) -> Landscape:
    """2-D: lr x weight decay, the regularisation a function of the product lr * wd."""
    opt = rng.uniform(-1.5, 0.5)
    edge = opt + rng.uniform(0.05, 0.4)
    best_reg = rng.uniform(-5.5, -3.0)  # log10(lr * wd) at the optimum
    floor, lw, rise = rng.uniform(0.08, 0.2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 3.0)
    reg = rng.uniform(0.02, 0.08)  # loss per squared decade away from the best product

    def f(x: np.ndarray) -> float:
        if x[0] > edge:
            return math.nan
        return min(
            _valley(x[0], opt, floor, lw, rise) + reg * (x[0] + x[1] - best_reg) ** 2, CHANCE
        )

    return Landscape("lr_wd", [Param("lr", -4.0, 1.0), WD], f, noise)


def lr_warmup(rng: np.random.Generator, noise: float) -> Landscape:
    """2-D: lr x warm-up fraction; a longer warm-up tolerates higher rates but costs epochs."""
    edge0 = rng.uniform(-1.0, 0.3)
    lift = rng.uniform(0.5, 2.0)  # decades the cliff rises per unit of warm-up fraction
    gap = rng.uniform(0.03, 0.3)
    best_w = rng.uniform(0.05, 0.3)
    cost = rng.uniform(0.5, 2.0)  # loss per squared unit of warm-up away from the best
    floor, lw, rise = rng.uniform(0.08, 0.2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 3.0)

    def f(x: np.ndarray) -> float:
        edge = edge0 + lift * x[1]
        if x[0] > edge:
            return math.nan
        return min(_valley(x[0], edge - gap, floor, lw, rise) + cost * (x[1] - best_w) ** 2, CHANCE)

    return Landscape("lr_warmup", [Param("lr", -4.0, 1.0), WARMUP], f, noise)


def lr_mom_wd(rng: np.random.Generator, noise: float) -> Landscape:
    """3-D: lr x momentum x weight decay (effective rate and its product with wd)."""
    opt = rng.uniform(-0.5, 0.8)
    edge = opt + rng.uniform(0.1, 0.5)
    best_m = rng.uniform(0.5, 0.95)
    best_reg = rng.uniform(-5.0, -2.5)
    floor, lw, rise = rng.uniform(0.08, 0.2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 3.0)
    reg = rng.uniform(0.02, 0.08)

    def f(x: np.ndarray) -> float:
        eff = x[0] - math.log10(1.0 - x[1])
        if eff > edge:
            return math.nan
        value = _valley(eff, opt, floor, lw, rise) + 0.3 * (x[1] - best_m) ** 2
        return min(value + reg * (eff + x[2] - best_reg) ** 2, CHANCE)

    params = [Param("lr", -4.0, 1.0), Param("momentum", 0.0, 0.99, log=False), WD]
    return Landscape("lr_mom_wd", params, f, noise)


def _unit(x: float, p: Param) -> float:
    """``x`` as a fraction of ``p``'s range."""
    return (x - p.low) / (p.high - p.low)


LR, MOMENTUM = Param("lr", -4.0, 1.0), Param("momentum", 0.0, 0.99, log=False)


def forrester(rng: np.random.Generator, noise: float) -> Landscape:
    """Forrester et al. (2008) on [0, 1]: global minimum -6.02 at 0.757, a local one at 0.14."""

    def f(x: np.ndarray) -> float:
        u = _unit(x[0], LR)
        return (6 * u - 2) ** 2 * math.sin(12 * u - 4)

    return Landscape("forrester", [LR], f, noise)


def gramacy_lee(rng: np.random.Generator, noise: float) -> Landscape:
    """Gramacy & Lee (2012) on [0.5, 2.5]: oscillating, the minimum -0.87 at 0.55."""

    def f(x: np.ndarray) -> float:
        t = 0.5 + 2.0 * _unit(x[0], LR)
        return math.sin(10 * math.pi * t) / (2 * t) + (t - 1) ** 4

    return Landscape("gramacy_lee", [LR], f, noise)


def levy(rng: np.random.Generator, noise: float) -> Landscape:
    """Levy in 1-D on [-10, 10]: many local minima, the global one 0 at 1."""

    def f(x: np.ndarray) -> float:
        w = 1 + (-10.0 + 20.0 * _unit(x[0], LR) - 1) / 4
        return math.sin(math.pi * w) ** 2 + (w - 1) ** 2 * (1 + math.sin(2 * math.pi * w) ** 2)

    return Landscape("levy", [LR], f, noise)


def six_hump_camel(rng: np.random.Generator, noise: float) -> Landscape:
    """Six-hump camel on [-3, 3] x [-2, 2]: two global minima (-1.03), four local ones."""

    def f(x: np.ndarray) -> float:
        a, b = -3.0 + 6.0 * _unit(x[0], LR), -2.0 + 4.0 * _unit(x[1], MOMENTUM)
        return (4 - 2.1 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2

    return Landscape("six_hump_camel", [LR, MOMENTUM], f, noise)


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a table's CSV text (``make_lr_table.py``), its ``#`` header skipped."""
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


class Table:
    """A measured objective on a grid: one surface per training seed, and their mean.

    The coordinates are the CSV's ``log10_lr`` column and, in a 2-D table
    (``make_lr_table.py --momenta``), its ``momentum`` column. Only seeds whose rows
    cover the whole grid count: a table still being measured leaves whole seeds.

    Args:
        path: The CSV file (``None`` with ``rows``).
        family: The landscape's name.
        rows: The CSV's rows, if already read.
    """

    AXES = ("log10_lr", "momentum")

    def __init__(self, path: Path | None, family: str = "table", rows=None) -> None:
        rows = table_rows(path.read_text()) if rows is None else rows
        self.family = family
        self.names = [name for name in self.AXES if name in rows[0]]
        self.axes = [np.array(sorted({float(r[name]) for r in rows})) for name in self.names]
        self.x = self.axes[0]
        seeds = sorted({int(r["seed"]) for r in rows})
        shape = (len(seeds), *(len(axis) for axis in self.axes))
        self.curves = np.full(shape, np.nan)
        measured = np.zeros(shape, dtype=bool)
        for r in rows:
            coords = zip(self.axes, self.names, strict=True)
            cell = (
                seeds.index(int(r["seed"])),
                *(int(np.argmin(abs(axis - float(r[name])))) for axis, name in coords),
            )
            measured[cell] = True
            if r["status"] == "ok" and r["objective"] not in ("", "None"):
                self.curves[cell] = float(r["objective"])
        self.curves = self.curves[measured.reshape(len(seeds), -1).all(axis=1)]
        if not len(self.curves):
            raise ValueError(f"{path or family}: no training seed covers the whole grid yet")
        # A finite loss over 10x chance level is a blown-up run: boresnet's trials call it
        # diverged, and so does the table (lr = 10 reached 1.7e7).
        self.curves[self.curves > BLOWN_UP_LOSS] = np.nan
        # A point that diverged for any seed counts as diverged on the mean surface.
        self.mean = self.curves.mean(axis=0)

    @classmethod
    def from_rows(cls, rows: list[dict[str, str]], family: str) -> Table:
        """A table of CSV rows already read (one length of a multi-length table)."""
        return cls(None, family, rows)

    def noise(self) -> float:
        """Median, over the grid, of the spread between training seeds."""
        # Where the mean is finite every seed is: there is a spread to take.
        sd = np.std(self.curves[:, np.isfinite(self.mean)], axis=0, ddof=1)
        return float(np.median(sd))

    def interp(self, surface: np.ndarray, x) -> float:
        """``surface`` at ``x``, multilinear in the coordinates; NaN next to divergence.

        The nearest grid point decides divergence; where a neighbour diverged but the
        nearest point did not, the nearest point's value stands.
        """
        cell, frac = [], []
        for axis, value in zip(self.axes, x, strict=False):
            j = int(np.clip(np.searchsorted(axis, value) - 1, 0, len(axis) - 2))
            cell.append(j)
            frac.append((value - axis[j]) / (axis[j + 1] - axis[j]))
        nearest = surface[tuple(j + int(t >= 0.5) for j, t in zip(cell, frac, strict=True))]
        if math.isnan(nearest):
            return math.nan
        total = 0.0
        for corner in itertools.product((0, 1), repeat=len(cell)):
            value = surface[tuple(j + c for j, c in zip(cell, corner, strict=True))]
            if math.isnan(value):
                return float(nearest)
            weight = math.prod(t if c else 1 - t for t, c in zip(frac, corner, strict=True))
            total += weight * value
        return float(total)

    def landscape(self) -> Landscape:
        """The table as a landscape: the mean surface scores, a random seed's answers."""
        params = [Param("lr", float(self.x[0]), float(self.x[-1]))]
        if len(self.axes) > 1:
            m = self.axes[1]
            params.append(Param("momentum", float(m[0]), float(m[-1]), log=False))
        return Landscape(
            self.family,
            params,
            lambda x: self.interp(self.mean, x),
            self.noise(),
            sampler=lambda x, rng: self.interp(self.curves[rng.integers(len(self.curves))], x),
        )


FAMILIES = {
    "cliff": cliff,
    "bound": bound,
    "plateau": plateau,
    "two_minima": two_minima,
    "wide": wide,
    "momentum": momentum,
}

CLASSIC = {
    "forrester": forrester,
    "gramacy_lee": gramacy_lee,
    "levy": levy,
    "six_hump_camel": six_hump_camel,
}

# Several SGD hyperparameters at once (momentum is also in FAMILIES, the default run).
MULTI = {
    "momentum": momentum,
    "lr_wd": lr_wd,
    "lr_warmup": lr_warmup,
    "lr_mom_wd": lr_mom_wd,
}

# Every generated landscape by name (the measured table is built from its file).
GENERATED = {**FAMILIES, **CLASSIC, **MULTI}
