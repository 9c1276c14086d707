"""The study's journal (``trials.jsonl``) and the lock on its run folder.

Each finished trial is one JSON line, written with a single ``write``, flushed and
fsynced before the study moves on, so a kill at any moment loses at most the trial in
progress. A torn last line (a kill during the write) is dropped with a warning on
resume; a bad line anywhere else means the file was damaged, and resume refuses it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

JOURNAL = "trials.jsonl"
REQUIRED = ("index", "params", "status", "objective")


class JournalError(RuntimeError):
    """The journal cannot be used; the message names the file and line."""


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


def read_journal(path: str | os.PathLike, repair: bool = False) -> list[dict[str, Any]]:
    """Read every complete record of a journal.

    Args:
        path: The ``trials.jsonl`` file.
        repair: Truncate a torn last line from the file (before appending to it).

    Returns:
        The records, in order.

    Raises:
        JournalError: A line other than the last is not a valid record.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records: list[dict[str, Any]] = []
    good_bytes = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            good_bytes += len(raw) + 1
            continue
        is_last = number == len(lines) or all(not rest.strip() for rest in lines[number:])
        torn = number == len(lines)  # no newline after it: the write never finished
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or any(k not in record for k in REQUIRED):
                raise ValueError("not a trial record")
        except ValueError as err:
            if is_last:
                warnings.warn(
                    f"{path}: ignoring a torn last line {number} "
                    "(interrupted write); that trial will run again",
                    stacklevel=2,
                )
                break
            raise JournalError(f"{path}, line {number}: not a valid trial record ({err})") from err
        if torn:
            warnings.warn(
                f"{path}: last line {number} has no newline; re-running that trial", stacklevel=2
            )
            break
        records.append(record)
        good_bytes += len(raw) + 1
    if repair and good_bytes < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    for expected, record in enumerate(records):
        if record["index"] != expected:
            raise JournalError(
                f"{path}: record {expected + 1} has index {record['index']}, expected {expected}"
            )
    return records


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as a line, durably (flush + fsync) before returning."""
    line = json.dumps(record, allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


class RunLock:
    """An exclusive lock on a run folder, released by the OS if the owner dies.

    Args:
        run_dir: The folder to lock.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self._lock = FileLock(str(self.run_dir / ".lock"), timeout=0)

    def __enter__(self) -> RunLock:
        try:
            self._lock.acquire()
        except Timeout as err:
            raise RunFolderBusy(
                f"run folder {self.run_dir} is in use by another boresnet process; "
                "wait for it to finish or stop it first"
            ) from err
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
