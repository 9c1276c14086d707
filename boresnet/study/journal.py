"""The study's journal (``trials.jsonl``): typed trial records, read and appended.

Each finished trial is one JSON line, written with a single ``write``, flushed and
fsynced before the study moves on, so a kill at any moment loses at most the trial in
progress. A torn last line (a kill during the write) is dropped with one warning on
resume; a bad line anywhere else means the file was damaged, and resume refuses it,
naming the file, the line and the field.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import stat
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boresnet.tuner import STATUSES

# A trial's index: no study proposes this many (search.budget is at most 10,000), and
# its seed (config seed + index) must stay a valid seed.
MAX_TRIAL_INDEX = 1_000_000


class JournalError(RuntimeError):
    """The journal cannot be used; the message names the file and line."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrialRecord:
    """One line of the journal: a finished trial.

    Journal lines are in completion order. One trial at a time, that is the order of
    proposals and ``index`` is the line's position; with several in flight a later
    proposal can finish first, and a resume after a kill leaves the lost trials' indices
    unused.

    Attributes:
        index: The trial's proposal number (0-based): its seed, log and checkpoint.
        params: Searched values, e.g. ``{"lr": 0.3}``.
        status: ``ok``, ``diverged`` or ``failed``.
        objective: The minimised value (``None`` unless ``ok``).
        val_loss: Validation loss after the last epoch.
        val_acc: Validation accuracy after the last epoch.
        error: One-line explanation for ``diverged`` and ``failed``.
        epochs: Epochs completed.
        wall_s: Seconds the trial took.
        seed: Seed of the trial's initialisation and data order.
        proposal: How the point was chosen (``sobol``, ``logei``, ``explore``, ``gap``...).
        finished_at: ISO time stamp.
        space: The search space the study searched (refuses foreign journals).
        config_sha: Fingerprint of the config that changes results.
        data_sha: Fingerprint of the images and labels the trial was trained on.
        pending: With several trials in flight, the indices of those still running
            when this one was proposed (the optimiser was told their points); absent
            (``None``) for a study that runs one trial at a time.
        threads: The CPU threads torch trained with (a retrain uses as many).
        length: Epochs of a short evaluation (a fidelity; ``None``: the full length).
    """

    index: int
    params: dict[str, float]
    status: str
    objective: float | None
    val_loss: float | None = None
    val_acc: float | None = None
    error: str | None = None
    epochs: int = 0
    wall_s: float = 0.0
    seed: int | None = None
    proposal: str | None = None
    finished_at: str | None = None
    space: list[dict[str, Any]] | None = None
    config_sha: str | None = None
    data_sha: str | None = None
    pending: list[int] | None = None
    threads: int | None = None
    length: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the trial succeeded: status ``ok`` (:meth:`from_dict` requires its objective)."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (without ``pending`` when there is none)."""
        data = dataclasses.asdict(self)
        for optional in ("pending", "threads", "length"):
            if data[optional] is None:
                del data[optional]  # absent rather than null: older lines read the same
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TrialRecord:
        """Validate and build a record from decoded JSON.

        Raises:
            ValueError: Not an object, a missing or unknown field, or a wrong type;
                the message names the field.
        """
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}")
        for key in ("index", "params", "status", "objective"):
            if key not in data:
                raise ValueError(f"field {key!r} is missing")
        record = cls(**data)
        checks = {
            "index": isinstance(record.index, int)
            and not isinstance(record.index, bool)
            and record.index >= 0,
            "params": isinstance(record.params, dict)
            and all(isinstance(k, str) and _number(v) for k, v in record.params.items()),
            "status": record.status in STATUSES,
            "objective": record.objective is None or _number(record.objective),
            "val_loss": record.val_loss is None or _number(record.val_loss),
            "val_acc": record.val_acc is None or _number(record.val_acc),
            "error": record.error is None or isinstance(record.error, str),
            "epochs": isinstance(record.epochs, int) and not isinstance(record.epochs, bool),
            "wall_s": _number(record.wall_s),
            "seed": record.seed is None
            or (isinstance(record.seed, int) and not isinstance(record.seed, bool)),
            "proposal": record.proposal is None or isinstance(record.proposal, str),
            "finished_at": record.finished_at is None or isinstance(record.finished_at, str),
            "space": record.space is None or isinstance(record.space, list),
            "config_sha": record.config_sha is None or isinstance(record.config_sha, str),
            "data_sha": record.data_sha is None or isinstance(record.data_sha, str),
            "threads": record.threads is None
            or (
                isinstance(record.threads, int)
                and not isinstance(record.threads, bool)
                and record.threads >= 1
            ),
            "length": record.length is None or (_number(record.length) and record.length > 0),
            "pending": record.pending is None
            or (
                isinstance(record.pending, list)
                and all(isinstance(i, int) and not isinstance(i, bool) for i in record.pending)
            ),
        }
        bad = [k for k, good in checks.items() if not good]
        if bad:
            raise ValueError(f"field {bad[0]!r} has a wrong type or value: {data[bad[0]]!r}")
        if not 0 <= record.index < MAX_TRIAL_INDEX:
            raise ValueError(f"field 'index' must be in [0, {MAX_TRIAL_INDEX}), got {record.index}")
        if record.pending is not None and not all(0 <= i < record.index for i in record.pending):
            raise ValueError(
                f"field 'pending' must hold earlier trials' indices, got {record.pending}"
            )
        if record.status == "ok" and record.objective is None:
            raise ValueError("field 'objective' is null although status is 'ok'")
        return record


def read_journal(
    path: str | os.PathLike,
    repair: bool = False,
    check_params: Callable[[dict[str, float]], None] | None = None,
) -> list[TrialRecord]:
    """Read every complete record of a journal, strictly.

    Only a last line without its final newline is torn (a kill during its write): it is
    dropped, with a warning, and its trial runs again. Any other line that is not a
    valid record, the last complete one included, is refused, and nothing is deleted.

    Args:
        path: The ``trials.jsonl`` file (a symbolic link is refused).
        repair: Truncate a torn last line from the file (before appending to it).
        check_params: Raises ``ValueError`` for a record's params that are not a
            point of the study's search space (``SearchSpace.check``).

    Returns:
        The records, in order.

    Raises:
        JournalError: A line is not a valid record (naming the file, line and field),
            or the records' indices are not 0, 1, 2...
    """
    path = Path(path)
    if not os.path.lexists(path):
        return []
    data = read_regular(path)
    lines = data.split(b"\n")
    records: list[TrialRecord] = []
    good_bytes = 0
    for number, raw in enumerate(lines, start=1):
        if number == len(lines):  # after the last newline: empty, or a torn write
            if raw.strip() and repair:  # warn once: the reader that repairs resumes
                warnings.warn(
                    f"{path}: ignoring a torn last line {number} (no newline: an "
                    "interrupted write); that trial will run again",
                    stacklevel=2,
                )
            break
        good_bytes += len(raw) + 1
        if not raw.strip():
            continue
        try:
            record = TrialRecord.from_dict(json.loads(raw))
            if check_params is not None:
                check_params(record.params)
        except (ValueError, TypeError) as err:
            raise JournalError(f"{path}, line {number}: not a valid trial record ({err})") from err
        records.append(record)
    if repair and good_bytes < len(data):
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.ftruncate(fd, good_bytes)
        finally:
            os.close(fd)
    seen: dict[int, int] = {}
    for line, record in enumerate(records, 1):
        if record.index in seen:
            raise JournalError(
                f"{path}: record {line} repeats trial index {record.index} (record "
                f"{seen[record.index]}): a journal holds each trial once"
            )
        seen[record.index] = line
    return records


def next_index(records: Sequence[TrialRecord]) -> int:
    """The index of the next proposal: one past the largest so far (lost ones stay unused)."""
    return max((r.index for r in records), default=-1) + 1


def read_regular(path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular file, not a symbolic link.

    Raises:
        JournalError: It is a link or another special file.
    """
    try:  # (non-blocking: opening a FIFO to read would wait for a writer)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise JournalError(f"{path} is a symbolic link; refusing to follow it") from err
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before fdopen, which refuses a folder
        os.close(fd)
        raise JournalError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        return f.read()


def append_record(path: str | os.PathLike, record: TrialRecord) -> None:
    """Append one record as a line, durably (flush + fsync) before returning."""
    line = json.dumps(record.to_dict(), allow_nan=False) + "\n"
    # Never through a symbolic link: the journal is written inside its run folder only.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
