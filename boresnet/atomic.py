"""Atomic file writes: a temporary file beside the target, fsynced, renamed over it.

A kill at any moment leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    The temporary file keeps ``target``'s suffix (matplotlib and torch pick the format
    from it). On an exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, same folder (so the rename is atomic), same suffix (the format).
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600): give it the permissions of a file
        # opened normally, so a run folder shared on a cluster stays readable.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically (temp + fsync + rename)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
