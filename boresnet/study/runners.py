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
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import ray
import torch
from ray.exceptions import (
    LocalRayletDiedError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RaySystemError,
    RayTaskError,
    WorkerCrashedError,
)

from boresnet.config.schema import Config, address_parts
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


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (its type where there is none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(err).__name__


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
        length: Epochs of a short evaluation (``None``: the full length).
    """

    index: int
    params: dict[str, float]
    kind: str
    seed: int
    pending: list[int] | None
    length: float | None = None


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


def check_address(address: str, timeout_s: float, source: str = "engine.address") -> None:
    """Fail within ``timeout_s`` unless a Ray cluster answers at ``address``.

    Something must accept the connection, and speak gRPC there (Ray's GCS and its client
    server do): a web server on the port is refused, where ``ray.init`` would retry
    forever. ``auto`` is looked up by Ray itself, which says at once when none runs.

    Args:
        address: ``auto``, ``host:port`` or ``ray://host:port``.
        timeout_s: Seconds to wait for each of the two checks.
        source: Where the address came from, for the message (``RAY_ADDRESS``).

    Raises:
        EngineError: Not an address, nothing answers there, or no Ray.
    """
    parts = address_parts(address)
    if parts is None:
        raise EngineError(f"{source}: expected auto, host:port or ray://host:port, got {address!r}")
    host, port = parts
    if host == "auto":
        return
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as err:
        raise EngineError(
            f"{source}: nothing answers at {address} within {timeout_s:g} s "
            f"({err.strerror or err}); start the cluster (ray start --head) or fix the address"
        ) from err
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError as err:
        raise EngineError(
            f"{source}: something answers at {address} but it is not a Ray cluster (no gRPC "
            f"within {timeout_s:g} s); give the head node's address (ray start --head "
            "prints it)"
        ) from err
    finally:
        channel.close()


@contextmanager
def signal_handlers_kept() -> Iterator[None]:
    """Restore SIGINT's and SIGTERM's handlers after the block.

    ``ray.init`` installs its own SIGTERM handler (``sys.exit``) and leaves it after
    ``ray.shutdown``: the study's own (exit 130 with the resume command) must stay.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            if handler is not None:
                signal.signal(sig, handler)


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
        from_env = self.address is not None and not config.engine.address
        self.source = "RAY_ADDRESS" if from_env else "engine.address"
        self._running: dict[ray.ObjectRef, Trial] = {}
        self._task: Any = None

    def preflight(self) -> None:
        """Refuse what can be refused before anything is written or Ray starts.

        The address (its form, and that a Ray cluster answers there), and for a local
        Ray a claim beyond this machine's CPUs or GPUs.

        Raises:
            EngineError: The message names the field (or ``RAY_ADDRESS``).
        """
        if self.address:
            check_address(self.address, self.config.engine.connect_timeout_s, self.source)
            return
        here = {"CPU": os.cpu_count() or 1, "GPU": torch.cuda.device_count()}
        for field, claim, key in (("cpus", self.cpus, "CPU"), ("gpus", self.gpus, "GPU")):
            if claim > here[key]:
                raise EngineError(
                    f"engine.{field}_per_trial: each trial claims {claim:g} {key}s but the "
                    f"largest machine here has {here[key]:g}"
                )

    def __enter__(self) -> RayRunner:
        self.preflight()
        # Ray prints a dead worker's warning on the driver's stdout; without colour codes.
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        with signal_handlers_kept():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR)
                else:
                    ray.init(
                        include_dashboard=False,
                        object_store_memory=OBJECT_STORE_BYTES,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                    )
            except KeyboardInterrupt:
                self._shutdown()  # a half-started Ray: its agents go with it
                raise
            except Exception as err:  # noqa: BLE001 - Ray's start-up errors vary: one line
                ray.shutdown()
                if self.address:
                    message = (
                        f"{self.source}: cannot join Ray at {self.address} ({first_line(err)}); "
                        "a `ray start --head` cluster needs RAY_AUTH_MODE=token"
                    )
                else:  # a full temp folder, a port or memory refused: the machine's
                    message = f"search.parallel: cannot start a local Ray ({first_line(err)})"
                raise EngineError(message) from err
        try:
            self._check_fits()
        except EngineError:
            self._shutdown()
            raise
        self._task = ray.remote(run_trial).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=TRIAL_RETRIES
        )
        return self

    def _shutdown(self) -> None:
        # A second Ctrl-C or SIGTERM during the shutdown would break it half-way (exit 1,
        # an atexit traceback): the study is stopping already.
        with signal_handlers_kept():
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_IGN)
            ray.shutdown()  # a joined cluster: only disconnects

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
        try:
            (ref,), _ = ray.wait(list(self._running), num_returns=1)
        except (LocalRayletDiedError, RaySystemError) as err:
            raise MachineFault(
                f"this machine's Ray node died ({type(err).__name__}: {first_line(err)})"
            ) from err
        trial = self._running.pop(ref)
        try:
            return trial, ray.get(ref)
        except WORKER_DEATHS as err:
            return trial, TrialResult(
                status="failed",
                objective=None,
                val_loss=None,
                val_acc=None,
                epochs=0,
                wall_s=0.0,
                error=f"its worker died {TRIAL_RETRIES + 1} times ({type(err).__name__}: "
                f"{first_line(err)})",
            )
        except RayTaskError as err:
            # The worker's own exception, as a sequential study would have raised it.
            if isinstance(err.cause, BaseException) and not isinstance(err.cause, RayTaskError):
                raise err.cause from None
            raise
        except (LocalRayletDiedError, RaySystemError) as err:
            raise MachineFault(
                f"this machine's Ray node died ({type(err).__name__}: {first_line(err)})"
            ) from err

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
        self._shutdown()
