"""Where trials run: one after another in this process, or several at once on Ray core.

Both runners have one interface, so the study has one loop: ``submit`` a trial,
``wait`` for the first to finish, ``running`` lists those in flight; each is a context
manager. :class:`SerialRunner` trains the trial in this process when it is waited for.

:class:`RayRunner` runs one remote task per trial, the first to finish first. The study
keeps its own loop, journal and figures (no Ray Tune): Ray places each trial
on a machine with the CPUs and GPU share it claims (``engine.cpus_per_trial``,
``engine.gpus_per_trial``), and reports the first that finishes (``ray.wait``). A worker
that dies mid-trial (out of memory, a lost node) is retried once by Ray itself; a
second death is the trial's result, ``failed``, with Ray's reason. A
:class:`~boresnet.faults.MachineFault` inside a trial (a broken device) still stops the
study, as it does when trials run one at a time.

Locally (no ``engine.address`` and no ``RAY_ADDRESS``) the engine starts a small Ray
(no dashboard, the smallest object store, logs in the system's temp folder) and stops
it on the way out, cancelling what still runs: nothing to set up, nothing left behind.
With an address it joins that cluster and only disconnects.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import ray
import torch
from ray.exceptions import (
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayTaskError,
    WorkerCrashedError,
)

from boresnet.config.schema import Config
from boresnet.training.faults import MachineFault
from boresnet.training.trial import TrialResult, run_trial

# Ray re-runs a trial whose worker process died once (an OOM kill, a node lost with
# its trial): a transient loss costs one rerun; a second death is the trial's result.
TRIAL_RETRIES = 1
# The local Ray's shared-memory object store: a trial returns a few numbers, so Ray's
# minimum (75 MiB) plus a margin instead of its default (30% of the memory) fits CI.
OBJECT_STORE_BYTES = 80 * 1024**2
# run_trial's arguments that are paths: made absolute, since a worker's working folder
# need not be the driver's.
PATH_ARGUMENTS = ("log_dir", "checkpoint")
# What Ray raises when a worker, or the node under it, died with the trial.
WORKER_DEATHS = (WorkerCrashedError, OutOfMemoryError, NodeDiedError, ObjectLostError)


class EngineError(RuntimeError):
    """The engine cannot start as configured; the message names the field."""


@dataclass(frozen=True)
class Trial:
    """A trial submitted to a runner and not yet finished.

    Attributes:
        index: Its proposal number (seed, log folder, checkpoint).
        params: Its point.
        kind: How it was proposed.
        seed: Its seed.
        pending: Indices of the trials in flight when it was proposed (``None`` for a
            study that runs one trial at a time).
    """

    index: int
    params: dict[str, float]
    kind: str
    seed: int
    pending: list[int] | None


class SerialRunner:
    """One trial at a time, in this process: trained when it is waited for.

    Args:
        config: The study's configuration.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._trial: tuple[Trial, dict[str, Any]] | None = None

    def __enter__(self) -> SerialRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self._trial = None

    def describe(self) -> str:
        """One line: where the trials run."""
        return "this process, one trial at a time"

    @property
    def running(self) -> list[Trial]:
        """The trial submitted and not yet waited for (at most one)."""
        return [] if self._trial is None else [self._trial[0]]

    def submit(self, trial: Trial, **kwargs: Any) -> None:
        """Queue ``trial`` with ``run_trial``'s keyword arguments (not params, seed)."""
        if self._trial is not None:
            raise RuntimeError("a serial runner runs one trial at a time")
        self._trial = (trial, kwargs)

    def wait(self) -> tuple[Trial, TrialResult]:
        """Train the submitted trial here; return it and its result.

        Raises:
            MachineFault: The trial hit a machine fault (the study stops).
        """
        if self._trial is None:
            raise RuntimeError("no trial was submitted")
        (trial, kwargs), self._trial = self._trial, None
        return trial, run_trial(self.config, trial.params, seed=trial.seed, **kwargs)


def gpus_per_trial(config: Config) -> float:
    """The GPUs a trial claims: as configured, else 1 with a GPU accelerator, else 0."""
    if config.engine.gpus_per_trial is not None:
        return config.engine.gpus_per_trial
    accelerator = config.trainer.accelerator
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return 1.0 if gpu else 0.0


def check_address(address: str, timeout_s: float) -> None:
    """Fail within ``timeout_s`` when ``host:port`` (or ``ray://host:port``) does not answer.

    ``auto`` is looked up by Ray itself, which says at once when no cluster runs here.

    Raises:
        EngineError: Not ``host:port``, or nothing answers there.
    """
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not (sep and host and port.isdigit()):
        raise EngineError(
            f"engine.address: expected auto, host:port or ray://host:port, got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise EngineError(
            f"engine.address: nothing answers at {address} within {timeout_s:g} s "
            f"({err.strerror or err}); start the cluster (ray start --head) or fix the address"
        ) from err


class RayRunner:
    """Trials as Ray tasks; a context manager that starts (or joins) Ray and stops it.

    Args:
        config: The study's configuration (its ``engine`` section).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cpus = config.engine.cpus_per_trial
        self.gpus = gpus_per_trial(config)
        self.address = config.engine.address or os.environ.get("RAY_ADDRESS") or None
        self._running: dict[ray.ObjectRef, Trial] = {}
        self._task: Any = None

    def __enter__(self) -> RayRunner:
        if self.address:
            check_address(self.address, self.config.engine.connect_timeout_s)
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR)
            except ConnectionError as err:
                raise EngineError(
                    f"engine.address: cannot join Ray at {self.address} ({err})"
                ) from err
        else:
            ray.init(
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        try:
            self._check_fits()
        except EngineError:
            ray.shutdown()
            raise
        self._task = ray.remote(run_trial).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=TRIAL_RETRIES
        )
        return self

    def _check_fits(self) -> None:
        """Refuse a claim no machine of the cluster can meet (Ray would wait forever)."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        for field, claim, key in (("cpus", self.cpus, "CPU"), ("gpus", self.gpus, "GPU")):
            largest = max((n.get(key, 0.0) for n in nodes), default=0.0)
            if claim > largest:
                raise EngineError(
                    f"engine.{field}_per_trial: each trial claims {claim:g} {key}s but the "
                    f"largest machine {'of the cluster' if self.address else 'here'} has "
                    f"{largest:g}"
                )

    def describe(self) -> str:
        """One line: where the trials run and what each claims."""
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
        return f"{where}, {self.cpus:g} CPU and {self.gpus:g} GPU per trial"

    @property
    def running(self) -> list[Trial]:
        """The trials in flight, in the order they were started."""
        return sorted(self._running.values(), key=lambda r: r.index)

    def submit(self, trial: Trial, **kwargs: Any) -> None:
        """Start ``trial`` with ``run_trial``'s keyword arguments (not params, seed).

        Every path (the data folder, the logs, the checkpoint) goes to the worker
        absolute: its working folder need not be the driver's.
        """
        data = dataclasses.replace(
            self.config.data, data_dir=str(Path(self.config.data.data_dir).resolve())
        )
        trainer = dataclasses.replace(self.config.trainer, progress_bar=False)
        config = dataclasses.replace(self.config, data=data, trainer=trainer)
        paths = {k: str(Path(v).resolve()) for k, v in kwargs.items() if k in PATH_ARGUMENTS}
        ref = self._task.remote(config, trial.params, seed=trial.seed, **{**kwargs, **paths})
        self._running[ref] = trial

    def wait(self) -> tuple[Trial, TrialResult]:
        """Block until a trial finishes; return it and its result.

        Raises:
            MachineFault: The trial hit a machine fault (the study stops).
        """
        (ref,), _ = ray.wait(list(self._running), num_returns=1)
        trial = self._running.pop(ref)
        try:
            return trial, ray.get(ref)
        except WORKER_DEATHS as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return trial, TrialResult(
                status="failed",
                objective=None,
                val_loss=None,
                val_acc=None,
                epochs=0,
                wall_s=0.0,
                error=f"its worker died {TRIAL_RETRIES + 1} times ({type(err).__name__}: {reason})",
            )
        except RayTaskError as err:
            if isinstance(err.cause, MachineFault):
                raise err.cause from err
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop every trial in flight (their results are lost; the journal keeps the rest).

        By ``ray.shutdown`` alone: a local Ray stops with its workers, and a cluster ends
        the tasks of a driver that leaves. Not by ``ray.cancel(force=True)`` first: Ray
        2.60 aborted the driver (a failed check in its task manager, "Tried to complete
        task that was not pending") when a cancelled trial's reply arrived during it.
        """
        self._running.clear()
        ray.shutdown()  # a joined cluster: only disconnects
