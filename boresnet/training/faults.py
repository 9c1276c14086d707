"""Machine faults: what stops a study without blaming the learning rate.

A trial's error is either the trial's (journalled ``failed``, the study goes on) or the
machine's: a dead or hung distributed peer, a broken collective backend, a lost device.
:func:`is_machine_fault` tells them apart, in one place, for every way trials run.
"""

from __future__ import annotations

import traceback

import torch


class MachineFault(RuntimeError):
    """The machine failed, not the trial: a peer, the collective backend or a device.

    A distributed peer died or hung, the backend broke, or a device was lost. Never
    journalled as a failed learning rate: the study stops with one line, and
    ``--resume`` runs the trial again.
    """


# What the distributed backends and the devices say when the machine, not the
# learning rate, failed (torch's own DistError classes are matched by type).
MACHINE_FAULT_MARKERS = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "processgroup",
    "nccl",
    "gloo",
    "collective operation timeout",
    "cuda error: unspecified launch failure",
    "device has fallen off the bus",
    "uncorrectable ecc error",
    "cuda driver error",
    "no cuda-capable device",
)


def is_machine_fault(err: BaseException) -> bool:
    """Whether ``err`` (or its cause) is the machine's fault (:class:`MachineFault`)."""
    while err is not None:
        if isinstance(err, torch.distributed.DistError):
            return True
        text = str(err).lower()
        if any(marker in text for marker in MACHINE_FAULT_MARKERS):
            return True
        err = err.__cause__ or err.__context__
    return False


def machine_fault(err: BaseException) -> MachineFault:
    """The :class:`MachineFault` that stands for ``err``, its last line as the message."""
    last = traceback.format_exception_only(err)[-1].strip()
    return MachineFault(f"a machine fault, not the learning rate: {last}")
