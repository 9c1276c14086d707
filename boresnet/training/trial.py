"""One trial: train a ResNet at given hyperparameters and report a validation objective.

A trial never raises for a bad learning rate: divergence (non-finite loss) and errors
inside training come back as a :class:`TrialResult` with status ``diverged`` or
``failed``, so a study can record them and go on. Interruptions (Ctrl-C) do propagate.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

from boresnet.atomic import atomic_path
from boresnet.config.schema import Config, ConfigError, with_params
from boresnet.training.classifier import ResNetClassifier
from boresnet.training.data import DatasetError, KMNISTDataModule, load_kmnist
from boresnet.training.faults import is_machine_fault, machine_fault

# A validation loss this many times chance level (ln 10 for 10 classes) means the weights
# blew up without reaching NaN: lr = 10 on the CPU profile ended at 1.7e7 and 4.7e10
# (benchmarks/data/lr_table.csv, the docs study). It is a divergence, not a loss to model.
BLOWN_UP_FACTOR = 10.0
BLOWN_UP_LOSS = BLOWN_UP_FACTOR * math.log(10)
# Disk full, quota exceeded, read-only file system: the machine, not the learning rate.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


@dataclass
class TrialResult:
    """What one trial reports.

    Attributes:
        status: ``ok``, ``diverged`` or ``failed``.
        objective: Value to minimise (``None`` unless status is ``ok``).
        val_loss: Validation cross-entropy after the last epoch.
        val_acc: Validation accuracy after the last epoch.
        epochs: Epochs completed.
        wall_s: Seconds the trial took.
        error: One-line explanation for ``diverged`` and ``failed``.
        threads: The CPU threads torch used: on a CPU, the same params, seed and thread
            count give the same weights (another count sums in another order).
    """

    status: str
    objective: float | None
    val_loss: float | None
    val_acc: float | None
    epochs: int
    wall_s: float
    error: str | None = None
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return dataclasses.asdict(self)


def default_precision(accelerator: str) -> str:
    """Choose bf16-mixed on a CUDA GPU that supports it, else full precision."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed"
        return "16-mixed"
    return "32-true"


def build_datamodule(config: Config, seed: int = 0) -> KMNISTDataModule:
    """Build the DataModule a trial trains on (``data`` fields are its arguments)."""
    return KMNISTDataModule(**dataclasses.asdict(config.data), shuffle_seed=seed)


def check_data(config: Config) -> str:
    """Load and validate both splits once, before any trial; return their fingerprint.

    A broken dataset (a wrong header, a label of 42, a missing file) is then one
    :class:`DatasetError` at the start, never a failed trial in the journal, and a bad
    test split cannot end a study after all its training.

    Returns:
        A short hash of both splits' images and labels (as decoded: the same data
        gzipped or not, anywhere, gives the same fingerprint).

    Raises:
        DatasetError: Either split is missing, unreadable or invalid.
    """
    digest = hashlib.sha256()
    for train in (True, False):
        images, labels = load_kmnist(
            config.data.data_dir, train=train, download=config.data.download
        )
        for tensor in (images, labels):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
    datamodule = build_datamodule(config)
    datamodule.setup("fit")
    datamodule.setup("test")
    return digest.hexdigest()[:16]


def build_module(config: Config) -> ResNetClassifier:
    """Build the LightningModule (``model`` and ``optim`` fields are its arguments)."""
    return ResNetClassifier(
        **dataclasses.asdict(config.model),
        **dataclasses.asdict(config.optim),
        divergence_check_every=config.trainer.divergence_check_every,
    )


def check_hardware(config: Config) -> None:
    """Refuse a trainer request this machine cannot serve, before anything starts.

    Raises:
        ConfigError: A GPU asked for where there is none, or more CPU processes than
            cores (each would be a full training process: memory runs out first).
    """
    t = config.trainer
    cuda = torch.cuda.is_available()
    if t.accelerator in ("gpu", "cuda") and not cuda:
        raise ConfigError(
            f"trainer.accelerator: {t.accelerator!r} asked for, but no CUDA GPU is available "
            "here; use --trainer.accelerator cpu (or auto)"
        )
    on_cpu = t.accelerator == "cpu" or (t.accelerator == "auto" and not cuda)
    cores = os.cpu_count() or 1
    if on_cpu and isinstance(t.devices, int) and t.devices > cores:
        raise ConfigError(
            f"trainer.devices: {t.devices} CPU processes asked for, but this machine has "
            f"{cores} cores"
        )


def build_strategy(config: Config) -> Any:
    """The trainer's strategy: DDP with the study's collective timeout, else as named.

    Lightning's default timeout is 30 minutes: a hung peer would hold the study that
    long before anyone notices (``trainer.collective_timeout_s``).
    """
    t = config.trainer
    if t.strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        start_method = {"ddp": "popen", "ddp_spawn": "spawn"}.get(t.strategy, "fork")
        return DDPStrategy(
            start_method=start_method, timeout=timedelta(seconds=t.collective_timeout_s)
        )
    return t.strategy


def build_trainer(
    config: Config, logger: Any = False, callbacks: list | None = None, **overrides: Any
) -> L.Trainer:
    """Build a Lightning ``Trainer`` from the trainer config (every Trainer is built here).

    Raises:
        ConfigError: The machine cannot serve the request (:func:`check_hardware`).
    """
    check_hardware(config)
    t = config.trainer
    callbacks = list(callbacks or [])
    # A bar on a terminal only: in a log file it is kilobytes of carriage returns per
    # trial, and the study already prints one line per trial.
    bar = t.progress_bar and sys.stderr.isatty()
    if bar:
        callbacks.append(TQDMProgressBar(leave=False))
    kwargs: dict[str, Any] = dict(
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=build_strategy(config),
        num_nodes=t.num_nodes,
        precision=t.precision or default_precision(t.accelerator),
        max_epochs=t.max_epochs,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def length_overrides(length: float | None, max_epochs: int) -> dict[str, Any]:
    """The ``Trainer`` arguments that compress the whole schedule into ``length`` epochs.

    A short run keeps warm-up, peak and decay (the one-cycle schedule counts the
    trainer's estimated steps), so its rate ranks as a full run's would, shortened:
    stopping a full run part-way judges a high rate mid-decay, when it looks worst.
    ``length`` rounds up to whole epochs, each limited to the same share of its
    batches: 0.25 of an epoch is one epoch of a quarter of the batches, 1.5 epochs are
    two epochs of three quarters.

    Args:
        length: Epochs of the evaluation (``None``: the full ``max_epochs``).
        max_epochs: The profile's full length.

    Raises:
        ConfigError: ``length`` not in ``(0, max_epochs]``.
    """
    if length is None or length == max_epochs:
        return {}
    if not (0 < length <= max_epochs):
        raise ConfigError(
            f"search.fidelity: a length of {length} epochs is not in (0, {max_epochs}]"
        )
    epochs = max(1, math.ceil(length - 1e-9))
    share = length / epochs
    return {"max_epochs": epochs, "limit_train_batches": 1.0 if share >= 1 else share}


def objective_of(config: Config, val_loss: float, val_acc: float) -> float:
    """Return the minimised objective: validation loss or validation error."""
    return val_loss if config.search.objective == "val_loss" else 1.0 - val_acc


def run_trial(
    config: Config,
    params: dict[str, float],
    seed: int = 0,
    log_dir: str | Path | None = None,
    name: str = "train",
    version: str | None = None,
    checkpoint: str | Path | None = None,
    trainer_overrides: dict[str, Any] | None = None,
    threads: int | None = None,
    length: float | None = None,
) -> TrialResult:
    """Train at ``params`` and return the validation objective.

    Args:
        config: The full configuration.
        params: Values of searched ``optim`` fields, e.g. ``{"lr": 0.03}``.
        seed: Seed of initialisation and data order.
        log_dir: Where the TensorBoard logger writes (no logging if ``None``).
        name: Logger experiment name.
        version: Logger version (sub-folder).
        checkpoint: Save the trained model here when the trial succeeds.
        trainer_overrides: Extra ``Trainer`` arguments (e.g. ``fast_dev_run``).
        threads: CPU threads for torch during the trial (``None``: as the process has;
            a Ray worker has its ``engine.cpus_per_trial``). A retrain passes the count
            its trial journalled.
        length: Epochs of a shortened evaluation, the whole schedule compressed into
            them (:func:`length_overrides`; ``None``: ``trainer.max_epochs``).

    Returns:
        The trial's result; never raises for divergence or training errors.

    Raises:
        DatasetError: The data cannot be loaded (no trial could succeed).
        KeyboardInterrupt: The user interrupted training.
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    overrides = {**length_overrides(length, config.trainer.max_epochs), **(trainer_overrides or {})}
    try:
        return _train(config, params, seed, log_dir, name, version, checkpoint, overrides)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    config: Config,
    params: dict[str, float],
    seed: int,
    log_dir: str | Path | None,
    name: str,
    version: str | None,
    checkpoint: str | Path | None,
    trainer_overrides: dict[str, Any] | None,
) -> TrialResult:
    start = time.perf_counter()
    config = with_params(config, params)
    if torch.cuda.is_available():
        # Fixed input shapes: let cuDNN pick the fastest kernels once per shape.
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    L.seed_everything(seed, workers=True, verbose=False)
    logger = (
        TensorBoardLogger(str(log_dir), name=name, version=version, default_hp_metric=False)
        if log_dir is not None
        else False
    )
    datamodule = build_datamodule(config, seed)
    module = build_module(config)
    if config.trainer.compile:
        module.model = torch.compile(module.model)
    trainer = build_trainer(config, logger=logger, **(trainer_overrides or {}))

    def result(status: str, error: str | None = None) -> TrialResult:
        metrics = trainer.callback_metrics
        val_loss = float(metrics["val_loss"]) if "val_loss" in metrics else None
        val_acc = float(metrics["val_acc"]) if "val_acc" in metrics else None
        objective = None
        if status == "ok":
            if val_loss is None or val_acc is None:
                status, error = "failed", "training ended without a validation result"
            elif not (math.isfinite(val_loss) and math.isfinite(val_acc)):
                status, error = "diverged", f"validation loss is {val_loss}"
            elif val_loss > BLOWN_UP_LOSS:
                status, error = (
                    "diverged",
                    f"validation loss {val_loss:.3g} is over {BLOWN_UP_FACTOR:g}x chance level: "
                    "the weights blew up (the learning rate is too high)",
                )
            else:
                objective = objective_of(config, val_loss, val_acc)
        if status != "ok":
            val_loss = val_loss if val_loss is not None and math.isfinite(val_loss) else None
        return TrialResult(
            status,
            objective,
            val_loss,
            val_acc,
            trainer.current_epoch,
            round(time.perf_counter() - start, 3),
            error,
            torch.get_num_threads(),
        )

    try:
        trainer.fit(module, datamodule=datamodule)
    except (DatasetError, KeyboardInterrupt):
        raise
    except OSError as err:
        if isinstance(err, (PermissionError, FileNotFoundError)) or err.errno in DISK_ERRORS:
            raise  # the environment, not the learning rate: never a trial failure
        last = traceback.format_exception_only(err)[-1].strip()
        return result("failed", last)
    except SystemExit as err:
        # Lightning turns Ctrl-C and SIGTERM into a graceful shutdown and an exit:
        # for the study both are an interruption of the trial in progress.
        raise KeyboardInterrupt from err
    except Exception as err:  # noqa: BLE001 - any training error is a failed trial
        if is_machine_fault(err):
            raise machine_fault(err) from err
        return result("failed", traceback.format_exception_only(err)[-1].strip())
    if trainer.interrupted:
        raise KeyboardInterrupt
    if module.divergence is not None:
        return result("diverged", module.divergence)
    outcome = result("ok")
    if outcome.status == "ok" and checkpoint is not None:
        try:
            save_checkpoint(trainer, Path(checkpoint))
        except Exception as err:
            if not is_machine_fault(err):
                raise
            # A peer that died after the last step is met again at the save's barrier.
            raise machine_fault(err) from err
    return outcome


def save_checkpoint(trainer: L.Trainer, target: Path) -> None:
    """Save the trained weights to ``target`` through the run folder's atomic writer.

    Weights and hyperparameters only: what evaluation needs, half the size. Rank 0
    writes a temporary file beside ``target``, fsyncs it and renames it over ``target``
    (Lightning's own save goes through the system's temporary folder, without fsync);
    the other ranks only join the save's barrier, writing nothing.
    """
    if not trainer.is_global_zero:
        trainer.save_checkpoint(str(target), weights_only=True)
        return
    with atomic_path(target) as tmp:
        trainer.save_checkpoint(str(tmp), weights_only=True)
