"""Data parallelism's process helpers: which rank this is, and the process group's end.

Under DDP, Lightning re-launches the command once per rank; every rank runs the same
code, and only global rank 0 writes files.
"""

from __future__ import annotations

import os

import torch


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
