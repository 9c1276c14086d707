"""Ctrl-C and SIGTERM that cannot be lost: a flag beside the ``KeyboardInterrupt``.

Python raises ``KeyboardInterrupt`` wherever the signal lands. Inside a finaliser (a
``__del__`` run by the garbage collector, such as one of Lightning's) it is printed as
"Exception ignored" and dropped, and the study would go on to its budget and exit 0.
:func:`handle_interrupt` also sets a flag, which the study checks between trials
(:func:`raise_if_interrupted`): an interruption is then never lost, at worst noticed one trial late.
"""

from __future__ import annotations

import threading
from types import FrameType

_received = threading.Event()


def handle_interrupt(signum: int, frame: FrameType | None) -> None:
    """Signal handler for SIGINT and SIGTERM: remember it, then raise ``KeyboardInterrupt``."""
    _received.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interruption arrived (even one that was swallowed)."""
    if _received.is_set():
        raise KeyboardInterrupt


def forget_interrupts() -> None:
    """Forget earlier interruptions (a new command in the same process)."""
    _received.clear()
