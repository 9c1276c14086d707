"""The run folder: the one owner of every path a study writes, and how it writes them.

A study's folder holds ``config.yaml``, the journal ``trials.jsonl``, ``figures/``,
TensorBoard event files (``study/`` for the BO figures, ``trials/`` for each trial's
training curves), ``checkpoints/`` and, at the end, ``summary.json`` and ``best.ckpt``.

Rules (so that a user's folder is never damaged by a typo in ``--run-dir``):

- a new study takes a folder that does not exist or is empty, and nothing else;
- ``--resume`` takes a folder holding a study: a ``config.yaml`` and a journal (created
  empty with the study, so a folder that merely holds a ``config.yaml`` is refused);
- every file is written to a temporary name in the same folder and renamed over the
  target, so a kill leaves the old file or the new one, never a torn one;
- nothing read from a folder is unpickled: YAML through ``safe_load``, JSON, and
  checkpoints with ``weights_only=True`` (see :mod:`boresnet.study.report`).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from boresnet.atomic import atomic_path, write_text

CONFIG = "config.yaml"
JOURNAL = "trials.jsonl"
SUMMARY = "summary.json"
BEST = "best.ckpt"
ORIGIN = "origin.yaml"
LOCK = ".lock"
FIGURES, CHECKPOINTS, STUDY_LOGS, TRIAL_LOGS = "figures", "checkpoints", "study", "trials"
FOLDERS = (FIGURES, CHECKPOINTS, STUDY_LOGS, TRIAL_LOGS)


# Data-parallel ranks that Lightning re-launches find rank 0's run folder here.
RUN_DIR_ENV = "BORESNET_RUN_DIR"


class RunFolderError(RuntimeError):
    """The folder cannot be used for this study; nothing in it was touched."""


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class RunFolder:
    """Every path of one study's folder, and the rules for creating and adopting it.

    Args:
        path: The folder.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    # ---------------------------------------------------------------- paths
    @property
    def config(self) -> Path:
        """The resolved configuration (``config.yaml``)."""
        return self.path / CONFIG

    @property
    def journal(self) -> Path:
        """The journal: one JSON line per finished trial."""
        return self.path / JOURNAL

    @property
    def summary(self) -> Path:
        """The final report."""
        return self.path / SUMMARY

    @property
    def best_checkpoint(self) -> Path:
        """The incumbent's weights, copied at the end."""
        return self.path / BEST

    @property
    def origin(self) -> Path:
        """The result-changing config fields as the study started (written once)."""
        return self.path / ORIGIN

    @property
    def lock(self) -> Path:
        """The lock file held while a process runs the study."""
        return self.path / LOCK

    @property
    def figures(self) -> Path:
        """Folder of the PNG figures."""
        return self.path / FIGURES

    @property
    def checkpoints(self) -> Path:
        """Folder of the trials' checkpoints."""
        return self.path / CHECKPOINTS

    @property
    def study_logs(self) -> Path:
        """TensorBoard folder of the study's figures and scalars."""
        return self.path / STUDY_LOGS

    trials_logs_name = TRIAL_LOGS  # TensorBoardLogger's experiment name under the folder

    def figure(self, name: str) -> Path:
        """A figure's path (``name`` without ``.png``)."""
        return self.figures / f"{name}.png"

    def iteration_figure(self, iteration: int) -> Path:
        """The figure drawn after ``iteration`` evaluations."""
        return self.figure(f"iteration_{iteration:02d}")

    def map_figure(self, iteration: int) -> Path:
        """The 2-D map drawn after ``iteration`` evaluations (two searched parameters)."""
        return self.figure(f"map_{iteration:02d}")

    def trial_checkpoint(self, index: int) -> Path:
        """Checkpoint of trial ``index`` (0-based)."""
        return self.checkpoints / f"trial_{index:03d}.ckpt"

    def claim(self, index: int) -> None:
        """Mark trial number ``index`` as used, before it starts (its log folder)."""
        (self.path / TRIAL_LOGS / self.trial_version(index)).mkdir(parents=True, exist_ok=True)

    def next_unclaimed(self) -> int:
        """One past the largest trial number claimed in this folder (0 when none is)."""
        logs = self.path / TRIAL_LOGS
        names = [p.name for p in logs.iterdir()] if logs.is_dir() else []
        found = (re.fullmatch(r"trial_(\d{3,})(-retrained)?", n) for n in names)
        numbers = [int(m.group(1)) for m in found if m]
        return max(numbers, default=-1) + 1

    def trial_version(self, index: int) -> str:
        """TensorBoard version (sub-folder) of trial ``index``."""
        return f"trial_{index:03d}"

    # ---------------------------------------------------------------- rules
    def check_entries(self) -> None:
        """Refuse a known entry that is a symbolic link or another special file.

        Every file and folder a study reads, writes or deletes must be a regular file or
        directory inside the folder: a link there would let a resume, ``plot`` or the
        clean-up write or delete outside it.

        Raises:
            RunFolderError: Naming the first such entry; nothing was touched.
        """
        kinds = {name: stat.S_ISREG for name in (CONFIG, JOURNAL, SUMMARY, BEST, LOCK, ORIGIN)}
        kinds.update({name: stat.S_ISDIR for name in FOLDERS})
        for name, is_kind in kinds.items():
            path = self.path / name
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if not is_kind(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular entry"
                raise RunFolderError(
                    f"{path} is {what}; boresnet never follows links or special files in a "
                    "run folder (replace it with the real file or folder)"
                )

    def is_study(self) -> bool:
        """Whether the folder holds a study: its ``config.yaml`` and its journal."""
        return self.config.is_file() and self.journal.is_file()

    def create(self) -> None:
        """Claim the folder for a new study: it must not exist, or be empty.

        Raises:
            RunFolderError: It holds a study (use ``--resume``), is a file, holds
                anything else, or cannot be created or written. Nothing is touched.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} is a file, not a folder")
        if self.path.is_dir():
            if self.is_study() or self.journal.exists():
                raise RunFolderError(f"{self.path} already holds a study; use --resume {self.path}")
            # The lock file alone: a new study that stopped before writing its config.
            entries = sorted(p.name for p in self.path.iterdir() if p.name != LOCK)
            if entries:
                shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
                raise RunFolderError(
                    f"{self.path} is not empty and is not a boresnet study ({shown}); "
                    "choose a new or empty folder"
                )
        self.ensure_writable()

    def adopt(self) -> None:
        """Check that the folder holds a study that can be resumed.

        Raises:
            RunFolderError: No such folder, or no ``config.yaml`` and journal in it.
        """
        if not self.path.is_dir() or not self.is_study():
            raise RunFolderError(
                f"{self.path} is not a boresnet run folder (no {CONFIG} and {JOURNAL})"
            )
        self.check_entries()
        self.ensure_writable()

    def start(self, config_data: dict[str, Any]) -> None:
        """Write a new study's ``config.yaml`` and its (empty) journal."""
        self.write_config_data(config_data)
        if not self.journal.exists():
            write_text(self.journal, "")

    def discard(self) -> None:
        """Undo :meth:`create` and :meth:`start` of a study that ran no trial.

        Only what a new study writes goes (config, origin, the empty journal, the lock,
        empty subfolders, then the folder if empty): the same command, corrected, can
        then use the folder again.

        Raises:
            RunFolderError: The journal holds a trial.
        """
        if self.journal.exists() and self.journal.stat().st_size > 0:
            raise RunFolderError(f"{self.path} holds trials; resume it instead")
        for name in (CONFIG, ORIGIN, JOURNAL, LOCK):
            (self.path / name).unlink(missing_ok=True)
        for sub in (*FOLDERS, self.path):
            folder = self.path / sub
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def ensure_writable(self) -> None:
        """Create the folder if needed and prove it writable, before any training."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.path, prefix=".write-test"):
                pass
        except OSError as err:
            raise RunFolderError(
                f"output folder {self.path} is not writable: {err.strerror or err}"
            ) from err

    # ---------------------------------------------------------------- reading
    def read_config_data(self) -> dict[str, Any]:
        """``config.yaml`` as plain data (``yaml.safe_load``).

        Raises:
            RunFolderError: Missing, empty, or not a YAML mapping.
        """
        if not self.is_study():
            raise RunFolderError(
                f"{self.path} is not a boresnet run folder (no {CONFIG} and {JOURNAL})"
            )
        self.check_entries()
        try:
            data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise RunFolderError(f"{self.config} is not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise RunFolderError(f"{self.config} is empty or not a mapping of config sections")
        return data

    def read_summary(self) -> dict[str, Any] | None:
        """``summary.json`` if present (``None`` otherwise).

        Raises:
            RunFolderError: It exists but is not a JSON object.
        """
        if not self.summary.is_file():
            return None
        try:
            data = json.loads(self.summary.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise RunFolderError(f"{self.summary} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise RunFolderError(f"{self.summary} is not a JSON object")
        return data

    # ---------------------------------------------------------------- writing
    def write_config_data(self, data: dict[str, Any]) -> None:
        """Write ``config.yaml`` atomically."""
        write_text(self.config, yaml.safe_dump(data, sort_keys=False))

    def write_origin(self, fields: dict[str, Any]) -> None:
        """Write ``origin.yaml`` once, atomically: a later resume names what changed."""
        if not os.path.lexists(self.origin):
            write_text(self.origin, yaml.safe_dump(fields, sort_keys=True))

    def read_origin(self) -> dict[str, Any] | None:
        """``origin.yaml`` as plain data (``None`` where absent or unreadable)."""
        if not self.origin.is_file():
            return None
        try:
            data = yaml.safe_load(self.origin.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` atomically; NaN and infinities become ``null``."""
        write_text(self.summary, json.dumps(json_safe(summary), indent=2, allow_nan=False))

    def remove_checkpoints(self, keep: set[int]) -> None:
        """Delete the trial checkpoints except ``keep``'s: regular files this study wrote.

        A symbolic link or anything not named ``trial_NNN.ckpt`` is left alone.
        """
        if not os.path.lexists(self.checkpoints):
            return
        self.check_entries()
        mine = {self.trial_checkpoint(i).name for i in keep}
        for path in self.checkpoints.iterdir():
            name = path.name
            ours = name.startswith("trial_") and name.endswith(".ckpt") and name[6:-5].isdigit()
            if ours and name not in mine and stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()

    def save(self, target: Path, writer: Callable[[Path], None]) -> None:
        """Write ``target`` atomically: ``writer(tmp)`` writes it, then a rename.

        For figures (``lambda p: fig.savefig(p)``) and checkpoints.
        """
        with atomic_path(target) as tmp:
            writer(tmp)


def new_run_dir(out: str, explicit: str | None) -> Path:
    """Pick the run folder: explicit, inherited from rank 0, or OUT/bo-TIMESTAMP."""
    if explicit:
        return Path(explicit)
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    world = max(int(os.environ.get(v, "1") or 1) for v in ("WORLD_SIZE", "SLURM_NTASKS"))
    if world > 1:
        # Ranks started by SLURM or torchrun do not share our environment: a timestamp
        # would differ between them, so each would write its own study.
        raise RunFolderError(
            "--run-dir is required when SLURM or torchrun starts the ranks "
            f"(world size {world}): every rank must use the same folder"
        )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(out) / f"bo-{stamp}"
