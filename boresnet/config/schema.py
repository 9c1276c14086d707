"""The typed configuration schema: one dataclass per concern, validated on creation.

YAML files in ``configs/`` and command-line overrides (``--trainer.devices 2``) are
parsed into these classes by :mod:`jsonargparse` (see :mod:`boresnet.cli.main`); unknown and
ill-typed fields are rejected there, value ranges here, each error naming its field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from boresnet.config.checks import ConfigError, check_fields, require
from boresnet.config.search import FidelityConfig, ParamConfig, SearchConfig

__all__ = ["Config", "ConfigError", "DataConfig", "EngineConfig", "ModelConfig", "OptimConfig"]
__all__ += ["FidelityConfig", "ParamConfig"]
__all__ += ["SearchConfig", "TrainerConfig", "config_from", "from_dict", "to_dict", "with_params"]

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
MAX_WIDTH = 1024
SEED_LIMIT = 2**32  # Lightning's seed_everything takes seeds below this
# Ray accounts resources to 4 decimal places: a finer claim is a precision error there.
RESOURCE_STEP = 0.0001
# More than an hour to answer is no cluster (and a larger value overflows a timeout).
MAX_CONNECT_TIMEOUT_S = 3600.0


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
    # A benchmark knob (benchmarks/throughput.py, gpu.sh), not for studies: repeat the
    # training images up to this many, to time a full-size epoch on a small data set.
    tile_train: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, "data")
        require(self.batch_size >= 1, "data.batch_size", f"must be >= 1, got {self.batch_size}")
        require(
            0 < self.val_fraction < 1,
            "data.val_fraction",
            f"must be in (0, 1), got {self.val_fraction}",
        )
        require(
            self.val_size is None or self.val_size >= 1,
            "data.val_size",
            f"must be >= 1, got {self.val_size}",
        )
        require(
            self.train_subset is None or self.train_subset >= 1,
            "data.train_subset",
            f"must be >= 1 (an empty training set cannot train), got {self.train_subset}",
        )
        require(self.num_workers >= 0, "data.num_workers", f"must be >= 0, got {self.num_workers}")


@dataclass
class ModelConfig:
    """Shape of the ResNet-9."""

    width: int = 64
    blocks: list[int] = field(default_factory=lambda: [1, 0, 1])
    convs_per_block: int = 2
    channels_last: bool = False

    def __post_init__(self) -> None:
        check_fields(self, "model")
        # 1024 is 16x the classic ResNet-9 (about 1.7 G parameters): beyond it a model
        # cannot be built in memory, and the allocation error would be a traceback.
        require(
            1 <= self.width <= MAX_WIDTH,
            "model.width",
            f"must be in [1, {MAX_WIDTH}], got {self.width}",
        )
        require(
            len(self.blocks) >= 1 and all(b >= 0 for b in self.blocks),
            "model.blocks",
            f"must be a non-empty list of counts >= 0, got {self.blocks}",
        )
        require(
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
        check_fields(self, "optim")
        require(self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        require(0 <= self.momentum < 1, "optim.momentum", f"must be in [0, 1), got {self.momentum}")
        require(
            self.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {self.weight_decay}"
        )
        require(
            0 < self.warmup_fraction < 1,
            "optim.warmup_fraction",
            f"must be in (0, 1), got {self.warmup_fraction}",
        )
        require(
            0 <= self.label_smoothing < 1,
            "optim.label_smoothing",
            f"must be in [0, 1), got {self.label_smoothing}",
        )
        require(self.translate >= 0, "optim.translate", f"must be >= 0, got {self.translate}")


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
        check_fields(self, "trainer")
        require(
            self.accelerator in ACCELERATORS,
            "trainer.accelerator",
            f"unknown accelerator {self.accelerator!r}; allowed: {', '.join(ACCELERATORS)}",
        )
        require(self.max_epochs >= 1, "trainer.max_epochs", f"must be >= 1, got {self.max_epochs}")
        require(self.num_nodes >= 1, "trainer.num_nodes", f"must be >= 1, got {self.num_nodes}")
        require(
            self.devices == "auto"
            or (isinstance(self.devices, int) and (self.devices >= 1 or self.devices == -1)),
            "trainer.devices",
            f"must be 'auto', -1 (all) or a count >= 1, got {self.devices!r}",
        )
        require(
            self.collective_timeout_s > 0,
            "trainer.collective_timeout_s",
            f"must be > 0, got {self.collective_timeout_s}",
        )
        require(
            self.divergence_check_every >= 1,
            "trainer.divergence_check_every",
            f"must be >= 1, got {self.divergence_check_every}",
        )


def address_parts(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; ``("auto", 0)`` for auto.

    ``None`` where the address has neither form (a port must be 1-65535).
    """
    if address == "auto":
        return "auto", 0
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536) or "/" in host:
        return None
    return host, int(port)


@dataclass
class EngineConfig:
    """Where trials run when several are in flight (``search.parallel`` > 1): Ray core.

    Attributes:
        address: An existing Ray cluster to join (``auto``, ``host:port`` or
            ``ray://host:port``); null: ``RAY_ADDRESS`` if set, else a local Ray that
            the study starts and stops.
        gpus_per_trial: GPUs each trial claims (fractions share one: 0.25 is four
            trials per GPU); null: 1 when the trainer's accelerator is a GPU, else 0.
        cpus_per_trial: CPU cores each trial claims (Ray also sets its threads).
        connect_timeout_s: Seconds to wait for ``address`` to answer.
    """

    address: str | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float = 1.0
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        check_fields(self, "engine")
        require(
            self.gpus_per_trial is None
            or (
                self.gpus_per_trial >= 0
                and (self.gpus_per_trial <= 1 or self.gpus_per_trial % 1 == 0)
            ),
            "engine.gpus_per_trial",
            f"must be a fraction in [0, 1] or a whole count, got {self.gpus_per_trial}",
        )
        require(
            self.cpus_per_trial >= RESOURCE_STEP,
            "engine.cpus_per_trial",
            f"must be >= {RESOURCE_STEP}, got {self.cpus_per_trial}",
        )
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, name)
            require(
                value is None or abs(value - round(value, 4)) < 1e-12,
                f"engine.{name}",
                f"Ray counts resources in steps of {RESOURCE_STEP}, got {value}",
            )
        require(
            0 < self.connect_timeout_s <= MAX_CONNECT_TIMEOUT_S,
            "engine.connect_timeout_s",
            f"must be in (0, {MAX_CONNECT_TIMEOUT_S}], got {self.connect_timeout_s}",
        )
        if self.address is not None:
            require(
                address_parts(self.address) is not None,
                "engine.address",
                f"expected auto, host:port or ray://host:port, got {self.address!r}",
            )


@dataclass
class Config:
    """Everything a trial or a study needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    seed: int = 0
    out: str = "lightning_logs"

    def __post_init__(self) -> None:
        check_fields(self, "")
        # Several trials at once share the machines; DDP spreads one trial over them.
        t = self.trainer
        ddp = t.num_nodes > 1 or t.devices not in ("auto", 1) or "ddp" in t.strategy
        require(
            self.search.parallel == 1 or not ddp,
            "search.parallel",
            f"{self.search.parallel} trials in flight cannot each run data-parallel "
            f"(trainer.devices={t.devices}, num_nodes={t.num_nodes}, strategy={t.strategy}): "
            "use one or the other",
        )
        for p in self.search.params:
            # Each bound must be a value the optim field itself accepts: a range that
            # strays outside (momentum up to 1.5) would fail trials and block resume.
            for end in ("low", "high"):
                try:
                    dataclasses.replace(self.optim, **{p.name: getattr(p, end)})
                except ConfigError as err:
                    raise ConfigError(
                        f"search.params[{p.name}].{end}: {getattr(p, end)} is outside the "
                        f"field's own range ({str(err).split(': ', 1)[-1]})"
                    ) from err
        if self.search.fidelity is not None:
            self.search.fidelity.fidelity(self.trainer.max_epochs)  # lengths the trainer can run
        # Trial i trains with seed + i: every one of them must be a valid seed.
        limit = SEED_LIMIT - self.search.budget
        require(0 <= self.seed < limit, "seed", f"must be in [0, {limit}), got {self.seed}")


def to_dict(config: Config) -> dict[str, Any]:
    """Return the config as plain data (for YAML and the journal)."""
    return dataclasses.asdict(config)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :func:`to_dict` output, validating it."""
    for section in ("data", "model", "optim", "trainer", "search", "engine"):
        require(
            isinstance(data.get(section, {}), dict),
            section,
            f"expected a mapping of fields, got {data.get(section)!r}",
        )
    search = dict(data.get("search", {}))
    if isinstance(search.get("fidelity"), dict):
        search["fidelity"] = FidelityConfig(**search["fidelity"])
    if "params" in search:  # given: as given (an empty list is refused, naming it)
        search["params"] = [ParamConfig(**p) for p in search["params"]]
    return Config(
        data=DataConfig(**data.get("data", {})),
        model=ModelConfig(**data.get("model", {})),
        optim=OptimConfig(**data.get("optim", {})),
        trainer=TrainerConfig(**data.get("trainer", {})),
        search=SearchConfig(**search),
        engine=EngineConfig(**data.get("engine", {})),
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
