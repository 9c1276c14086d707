"""The typed configuration schema: one dataclass per concern, validated on creation.

YAML files in ``configs/`` and command-line overrides (``--trainer.devices 2``) are
parsed into these classes by :mod:`jsonargparse` (see :mod:`boresnet.cli`); unknown and
ill-typed fields are rejected there, value ranges here, each error naming its field.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
MAX_WIDTH = 1024
# A study of more evaluations is a typo (the GP's cost grows with the cube of it).
MAX_BUDGET = 10_000
SEED_LIMIT = 2**32  # Lightning's seed_everything takes seeds below this
TUNABLE = ("lr", "momentum", "weight_decay", "label_smoothing", "warmup_fraction")


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{name}: {message}")


def _check_fields(section: object, prefix: str) -> None:
    """Every field of a config dataclass holds a value of its annotated type.

    jsonargparse checks types on the command line; this checks a config built any other
    way (a resumed ``config.yaml``, :func:`from_dict`), so that a typo is one line
    naming the field, never a ``TypeError`` from a comparison or a trial that fails.
    """
    for name, hint in get_type_hints(type(section)).items():
        value = getattr(section, name)
        if not _matches(value, hint):
            allowed = get_args(hint) if get_origin(hint) is Literal else None
            expected = f"one of {', '.join(map(str, allowed))}" if allowed else _describe(hint)
            where = f"{prefix}.{name}" if prefix else name
            raise ConfigError(f"{where}: expected {expected}, got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, option) for option in get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(_matches(v, get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # an integer is a float too (lr: 1)
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(option) for option in get_args(hint))
    if get_origin(hint) is list:
        return f"a list of {_describe(get_args(hint)[0])}"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


@dataclass
class DataConfig:
    """Where the data is and how it is split and batched."""

    data_dir: str = "data"
    download: bool = True
    batch_size: int = 128
    val_fraction: float = 0.1
    val_size: int | None = None
    train_subset: int | None = None
    split_seed: int = 0
    num_workers: int = 0
    loader: Literal["auto", "dataloader", "device"] = "auto"
    eval_batch_size: int = 1000
    tile_train: int | None = None  # repeat training images to this many: timing only

    def __post_init__(self) -> None:
        _check_fields(self, "data")
        _require(self.batch_size >= 1, "data.batch_size", f"must be >= 1, got {self.batch_size}")
        _require(
            0 < self.val_fraction < 1,
            "data.val_fraction",
            f"must be in (0, 1), got {self.val_fraction}",
        )
        _require(
            self.val_size is None or self.val_size >= 1,
            "data.val_size",
            f"must be >= 1, got {self.val_size}",
        )
        _require(
            self.train_subset is None or self.train_subset >= 1,
            "data.train_subset",
            f"must be >= 1 (an empty training set cannot train), got {self.train_subset}",
        )
        _require(self.num_workers >= 0, "data.num_workers", f"must be >= 0, got {self.num_workers}")


@dataclass
class ModelConfig:
    """Shape of the ResNet-9."""

    width: int = 64
    blocks: list[int] = field(default_factory=lambda: [1, 0, 1])
    convs_per_block: int = 2
    channels_last: bool = False

    def __post_init__(self) -> None:
        _check_fields(self, "model")
        # 1024 is 16x the classic ResNet-9 (about 1.7 G parameters): beyond it a model
        # cannot be built in memory, and the allocation error would be a traceback.
        _require(
            1 <= self.width <= MAX_WIDTH,
            "model.width",
            f"must be in [1, {MAX_WIDTH}], got {self.width}",
        )
        _require(
            len(self.blocks) >= 1 and all(b >= 0 for b in self.blocks),
            "model.blocks",
            f"must be a non-empty list of counts >= 0, got {self.blocks}",
        )
        _require(
            self.convs_per_block >= 1,
            "model.convs_per_block",
            f"must be >= 1, got {self.convs_per_block}",
        )


@dataclass
class OptimConfig:
    """SGD and the training recipe; ``lr`` is the value when not searched."""

    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: Literal["constant", "onecycle"] = "onecycle"
    warmup_fraction: float = 0.25
    label_smoothing: float = 0.0
    translate: int = 0

    def __post_init__(self) -> None:
        _check_fields(self, "optim")
        _require(self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        _require(
            0 <= self.momentum < 1, "optim.momentum", f"must be in [0, 1), got {self.momentum}"
        )
        _require(
            self.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {self.weight_decay}"
        )
        _require(
            0 < self.warmup_fraction < 1,
            "optim.warmup_fraction",
            f"must be in (0, 1), got {self.warmup_fraction}",
        )
        _require(
            0 <= self.label_smoothing < 1,
            "optim.label_smoothing",
            f"must be in [0, 1), got {self.label_smoothing}",
        )
        _require(self.translate >= 0, "optim.translate", f"must be >= 0, got {self.translate}")


@dataclass
class TrainerConfig:
    """Lightning ``Trainer`` settings; these are the scale-out flags."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None
    max_epochs: int = 2
    compile: bool = False
    progress_bar: bool = True
    divergence_check_every: int = 10
    # Seconds a collective may wait for a peer under DDP before the study stops with a
    # machine fault (torch's default is 30 minutes). A trial's slowest collective is a
    # validation or test pass's gather, seconds even at width 64; 300 s leaves a
    # margin for a loaded node while noticing a dead or hung peer in minutes.
    collective_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        _check_fields(self, "trainer")
        _require(
            self.accelerator in ACCELERATORS,
            "trainer.accelerator",
            f"unknown accelerator {self.accelerator!r}; allowed: {', '.join(ACCELERATORS)}",
        )
        _require(self.max_epochs >= 1, "trainer.max_epochs", f"must be >= 1, got {self.max_epochs}")
        _require(self.num_nodes >= 1, "trainer.num_nodes", f"must be >= 1, got {self.num_nodes}")
        _require(
            self.devices == "auto"
            or (isinstance(self.devices, int) and (self.devices >= 1 or self.devices == -1)),
            "trainer.devices",
            f"must be 'auto', -1 (all) or a count >= 1, got {self.devices!r}",
        )
        _require(
            self.collective_timeout_s > 0,
            "trainer.collective_timeout_s",
            f"must be > 0, got {self.collective_timeout_s}",
        )
        _require(
            self.divergence_check_every >= 1,
            "trainer.divergence_check_every",
            f"must be >= 1, got {self.divergence_check_every}",
        )


@dataclass
class ParamConfig:
    """One searched hyperparameter: an ``optim`` field, its bounds and scale."""

    name: str = "lr"
    low: float = 1e-4
    high: float = 1.0
    scale: Literal["log", "linear"] = "log"

    def __post_init__(self) -> None:
        where = f"search.params[{self.name}]"
        _check_fields(self, where)
        _require(
            self.name in TUNABLE,
            f"{where}.name",
            f"unknown parameter {self.name!r}; allowed: {', '.join(TUNABLE)}",
        )
        _require(
            math.isfinite(self.low) and math.isfinite(self.high), where, "bounds must be finite"
        )
        _require(
            self.low < self.high, where, f"low must be < high, got low={self.low}, high={self.high}"
        )
        if self.scale == "log":
            _require(
                self.low > 0, f"{where}.low", f"a log-scale parameter needs low > 0, got {self.low}"
            )


# The tuner's choices, one list each: checked for a config (SearchConfig) and for the
# optimiser used directly (boresnet.tuner), by check_tuner_choices alone.
TUNER_CHOICES = {
    "acquisition": ("logei", "ei"),
    "transform": ("none", "log"),
    "failures": ("feasibility", "exclude", "impute"),
    "kernel": ("matern", "rbf"),
}


def check_tuner_choices(**values: str) -> None:
    """Raise :class:`ConfigError` naming ``search.<field>`` for a value not in its list.

    Args:
        **values: ``acquisition``, ``transform``, ``failures`` and/or ``kernel``.
    """
    for name, value in values.items():
        allowed = TUNER_CHOICES[name]
        _require(
            value in allowed,
            f"search.{name}",
            f"unknown {name} {value!r}; allowed: {', '.join(allowed)}",
        )


# Sobol points per searched parameter when search.n_init is null (measured: see n_init).
DESIGN_PER_PARAM = 2


def design_size(n_params: int, budget: int | None, n_init: int | None = None) -> int:
    """Sobol points before the model: ``n_init``, or 2 per parameter, at most the budget.

    Args:
        n_params: How many parameters are searched.
        budget: The study's number of evaluations (``None``: unknown, no cap).
        n_init: An explicit size, which wins.
    """
    if n_init is not None:
        return n_init
    size = DESIGN_PER_PARAM * n_params
    return size if budget is None else min(size, budget)


@dataclass
class SearchConfig:
    """The Bayesian optimisation study."""

    params: list[ParamConfig] = field(default_factory=lambda: [ParamConfig()])
    # Evaluations in all; the last one refines rather than explores (boresnet/tuner/
    # rules.py FINAL_STEPS_WITHOUT_EXPLORING).
    budget: int = 10
    # Sobol points before the model; null: 2 per searched parameter (at most the
    # budget). In 1-D a third point raised cliff's median regret 2.6x and did not
    # help elsewhere (benchmarks/results/bo_regret.md); in 2-D (lr x momentum) four
    # points instead of two lowered the median regret from 0.080 to 0.066 and the p90
    # from 0.51 to 0.17 (measured before the short-sighted exploration model;
    # benchmarks/bo_regret.py, docs/benchmarks.md).
    n_init: int | None = None
    # Validation loss rather than error: it is continuous where accuracy saturates.
    objective: Literal["val_loss", "val_error"] = "val_loss"
    # Model log(objective): loss curves span decades (0.1 at the optimum, 2.3 at chance),
    # and on the log scale a stationary GP fits both the valley and the plateau. It
    # lowered the median regret 1.6-5.6x on 4 of the 7 landscape families and raised it
    # on cliff (0.0025 vs 0.0014) and two_minima (0.0011 vs 0.0002); pooled median
    # 0.0006 vs 0.0013 (docs/benchmarks.md).
    transform: Literal["none", "log"] = "log"
    acquisition: str = "logei"
    # How failed/diverged trials inform the search (boresnet/tuner/): a
    # feasibility GP with constrained log-EI, exclusion zones, or worst-value imputation
    # (8.8x and 1.9x the feasibility model's median regret on the cliff family, 5.4x
    # and 86x on wide: docs/benchmarks.md).
    failures: Literal["feasibility", "exclude", "impute"] = "feasibility"
    kernel: Literal["matern", "rbf"] = "matern"
    # The feasibility GP's linear mean: beyond a divergence it stays pessimistic;
    # without it the median regret is 1.4x on cliff, 2.1x on wide, 1.2x on momentum,
    # and the pooled 90th percentile 0.034 instead of 0.027 (docs/benchmarks.md).
    feasibility_trend: bool = True
    # Never re-evaluate within 0.01 decades of a trial (issue: lr = 1 evaluated twice).
    min_distance: float = 0.01
    # Explore instead of refining by less than a worthwhile gain once the best has
    # stalled for this many evaluations (boresnet/tuner/rules.py); null: never. Without
    # it the plateau family's median regret is 11x and the pooled 90th percentile
    # goes from 0.027 to 0.103 (docs/benchmarks.md).
    explore_after: int | None = 2
    # While the model only refines its incumbent, evaluate the centre of the largest
    # hole in the data when its radius (a fraction of the range, divided by
    # sqrt(dimensions)) exceeds this and the GP does not rule it out (boresnet/
    # tuner/rules.py); null: never. 0.2 (docs/benchmarks.md): Forrester's p90 regret
    # 5.04 -> 0.009 (a quarter of the runs crawled into its local minimum), Levy's
    # 0.45 -> 0.004, two_minima's median 0.0016 -> 0.0011; it costs cliff's median
    # 0.0009 -> 0.0025 and plateau's 0.0011 -> 0.0014. At 0.15 (development runs) the
    # camel's median was 0.49 (0.28 without), and without the GP's veto momentum's
    # 0.071 (0.049).
    gap_radius: float | None = 0.2
    # 10 restarts from 512 raw samples: a BO step takes 0.10 s in 1-D, 0.18 s in 3-D
    # with 30 points (benchmarks/throughput.py), far below a trial's cost.
    num_restarts: int = 10
    raw_samples: int = 512
    max_consecutive_failures: int = 3

    def __post_init__(self) -> None:
        _check_fields(self, "search")
        _require(len(self.params) >= 1, "search.params", "needs at least one parameter")
        names = [p.name for p in self.params]
        _require(len(set(names)) == len(names), "search.params", f"duplicate names in {names}")
        for p in self.params:
            # Each bound must be a value the optim field itself accepts: a range that
            # strays outside (momentum up to 1.5) would fail trials and block resume.
            for end in ("low", "high"):
                try:
                    OptimConfig(**{p.name: getattr(p, end)})
                except ConfigError as err:
                    raise ConfigError(
                        f"search.params[{p.name}].{end}: {getattr(p, end)} is outside the "
                        f"field's own range ({str(err).split(': ', 1)[-1]})"
                    ) from err
        _require(
            1 <= self.budget <= MAX_BUDGET,
            "search.budget",
            f"must be in [1, {MAX_BUDGET}], got {self.budget}",
        )
        if self.n_init is not None:
            _require(self.n_init >= 1, "search.n_init", f"must be >= 1, got {self.n_init}")
            _require(
                self.n_init <= self.budget,
                "search.n_init",
                f"initial design ({self.n_init}) is larger than the budget ({self.budget})",
            )
        check_tuner_choices(
            acquisition=self.acquisition,
            transform=self.transform,
            failures=self.failures,
            kernel=self.kernel,
        )
        _require(self.num_restarts >= 1, "search.num_restarts", "must be >= 1")
        _require(
            self.explore_after is None or self.explore_after >= 0,
            "search.explore_after",
            f"must be >= 0 or null, got {self.explore_after}",
        )
        _require(
            self.gap_radius is None or 0 < self.gap_radius < 1,
            "search.gap_radius",
            f"must be in (0, 1) or null, got {self.gap_radius}",
        )
        _require(
            0 <= self.min_distance < 1,
            "search.min_distance",
            f"must be in [0, 1), got {self.min_distance}",
        )
        _require(
            self.raw_samples >= self.num_restarts,
            "search.raw_samples",
            "must be >= search.num_restarts",
        )
        _require(
            self.max_consecutive_failures >= 1, "search.max_consecutive_failures", "must be >= 1"
        )

    @property
    def design_size(self) -> int:
        """Sobol points before the model (:func:`design_size`)."""
        return design_size(len(self.params), self.budget, self.n_init)


@dataclass
class Config:
    """Everything a trial or a study needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    seed: int = 0
    out: str = "lightning_logs"

    def __post_init__(self) -> None:
        _check_fields(self, "")
        # Trial i trains with seed + i: every one of them must be a valid seed.
        limit = SEED_LIMIT - self.search.budget
        _require(0 <= self.seed < limit, "seed", f"must be in [0, {limit}), got {self.seed}")


def to_dict(config: Config) -> dict[str, Any]:
    """Return the config as plain data (for YAML and the journal)."""
    return dataclasses.asdict(config)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :func:`to_dict` output, validating it."""
    for section in ("data", "model", "optim", "trainer", "search"):
        _require(
            isinstance(data.get(section, {}), dict),
            section,
            f"expected a mapping of fields, got {data.get(section)!r}",
        )
    search = dict(data.get("search", {}))
    if "params" in search:  # given: as given (an empty list is refused, naming it)
        search["params"] = [ParamConfig(**p) for p in search["params"]]
    return Config(
        data=DataConfig(**data.get("data", {})),
        model=ModelConfig(**data.get("model", {})),
        optim=OptimConfig(**data.get("optim", {})),
        trainer=TrainerConfig(**data.get("trainer", {})),
        search=SearchConfig(**search),
        seed=data.get("seed", 0),
        out=data.get("out", "lightning_logs"),
    )


def unknown_field(key: str) -> str | None:
    """Why ``key`` (``section.field``) is not a config field, or ``None`` if it is one.

    The dataclasses are the only list of fields: the message names the allowed ones.
    """
    node: Any = Config()
    path: list[str] = []
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            return None  # inside a list or value (e.g. search.params): the parser checks it
        names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            section = ".".join(path)
            where = f"{section}." if section else ""
            allowed = ", ".join(where + n for n in names)
            return f"unknown field {key!r}; allowed in {section or 'the top level'}: {allowed}"
        node = getattr(node, part)
        path.append(part)
    return None


def config_from(values: dict[str, Any]) -> Config:
    """Build the validated :class:`Config` from parsed command-line values.

    ``values`` is a subcommand's parsed namespace as a dict (jsonargparse's
    ``Namespace.as_dict()``): the config sections are taken by the dataclass's own
    field names, and the shortcut flags ``data_dir`` and ``budget`` are applied on top.
    """
    sections = {f.name: values[f.name] for f in dataclasses.fields(Config) if f.name in values}
    config = from_dict(sections)
    if values.get("data_dir"):
        config.data.data_dir = values["data_dir"]
    if values.get("budget") is not None:
        config.search.budget = values["budget"]
    return from_dict(to_dict(config))  # validate the shortcuts too


def with_params(config: Config, params: dict[str, float]) -> Config:
    """Return a copy of ``config`` whose ``optim`` fields take the searched values."""
    return dataclasses.replace(config, optim=dataclasses.replace(config.optim, **params))
