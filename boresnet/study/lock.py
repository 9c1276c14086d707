"""The run folder's lock: one process per study, released by the OS if its owner dies."""

from __future__ import annotations

import errno
import fcntl
import os
import warnings
from pathlib import Path

from filelock import FileLock, Timeout


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


def kernel_lock_holds(lock_file: Path) -> bool:
    """Whether the kernel refuses a second ``flock`` of the (held) lock file.

    Called while this process holds the lock: a second open file description of the
    same file must then be refused. Where ``flock`` is missing or a no-op, it is not.
    """
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # no lock file: the lock is not a flock of it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on a run folder, released by the OS if the owner dies.

    Args:
        lock_file: The folder's lock file.
    """

    def __init__(self, lock_file: str | os.PathLike) -> None:
        self.lock_file = Path(lock_file)
        self._lock = FileLock(str(self.lock_file), timeout=0)

    def __enter__(self) -> RunLock:
        try:
            self._lock.acquire()
        except Timeout as err:
            raise RunFolderBusy(
                f"run folder {self.lock_file.parent} is in use by another boresnet process; "
                "wait for it to finish or stop it first"
            ) from err
        if not kernel_lock_holds(self.lock_file):
            # filelock falls back to a marker file where flock is missing (some network
            # file systems): that marker survives a SIGKILL of its owner.
            warnings.warn(
                f"the file system of {self.lock_file.parent} has no kernel file locks "
                "(flock): two processes could run this study at once, and if this one is "
                f"killed, delete {self.lock_file} before resuming",
                stacklevel=2,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
