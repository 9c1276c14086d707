"""Data parallelism's process helpers: which rank this is, and the process group's end.

Under DDP, Lightning re-launches the command once per rank; every rank runs the same
code, and only global rank 0 writes files.
"""

from __future__ import annotations

import os
from typing import TypeVar

import torch

T = TypeVar("T")


def is_primary() -> bool:
    """Whether this process is global rank 0 (the one that writes files)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        if int(os.environ.get(var, "0") or 0) != 0:
            return False
    return True


def close_process_group() -> None:
    """End the process group a data-parallel trial left open (no-op without one).

    Lightning keeps it between fits, so that a study's trials reuse it. Left to the
    interpreter's exit, gloo's threads are torn down unjoined: the process then aborts
    after its work is done ("terminate called without an active exception", exit -6;
    one run in six of ``tests/test_ddp.py``'s NaN-on-one-rank script).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def rank_zero_decides(value: T) -> T:
    """Rank 0's ``value`` on every rank (this rank's own where no process group is open).

    A decision that collective work depends on (retrain, or test a checkpoint) must be
    the same on every rank: a file rank 0 is still renaming into place is there for one
    rank and not for another, and the ranks then wait in different collectives.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
