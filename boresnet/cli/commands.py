"""The four commands, as thin functions over the study, report and resume layers.

``train`` runs one trial; ``bo`` runs or resumes a study; ``evaluate`` re-tests a
study's ``best.ckpt`` on any KMNIST-layout folder; ``plot`` redraws every figure from
the journal alone. Each returns the process's exit status.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
from jsonargparse import ArgumentParser, Namespace

from boresnet.config.schema import Config, config_from
from boresnet.study.adapter import search_space
from boresnet.study.artefacts import (
    save_iteration_figure,
    write_confusion_figure,
    write_summary_figures,
)
from boresnet.study.interrupts import forget_interrupts, handle_interrupt
from boresnet.study.journal import read_journal
from boresnet.study.loop import start_study
from boresnet.study.report import CheckpointError, test_checkpoint
from boresnet.study.resume import check_resume, load_run_config
from boresnet.study.run_folder import RunFolder, new_run_dir
from boresnet.training.data import overlap_count
from boresnet.training.distributed import is_primary
from boresnet.training.trial import run_trial

EXIT_OK, EXIT_NO_RESULT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


def cmd_train(ns: Namespace) -> int:
    """Run one trial and print its result; the last stdout line is JSON."""
    config = config_from(ns.as_dict())
    lr = ns.lr if ns.lr is not None else config.optim.lr
    if not lr > 0:
        raise CommandError(f"--lr: must be > 0, got {lr}")
    result = run_trial(config, {"lr": lr}, seed=config.seed, log_dir=config.out, name="train")
    record: dict[str, Any] = {"lr": lr, **result.to_dict()}
    if is_primary():  # under data parallelism every rank gets here: one line, not two
        if result.status != "ok":
            print(f"trial {result.status}: {result.error}", file=sys.stderr)
        print(json.dumps(record))
    return EXIT_NO_RESULT if result.status == "failed" else EXIT_OK


def cmd_bo(parser: ArgumentParser, ns: Namespace, argv: list[str]) -> int:
    """Run ``boresnet bo``: a new study, or ``--resume`` an interrupted one.

    Args:
        parser: The ``bo`` subcommand's parser (resume re-parses the saved config).
        ns: Its parsed namespace.
        argv: The ``bo`` arguments as typed.
    """
    if ns.resume:
        folder = RunFolder(ns.resume)
        config = check_resume(parser, ns, argv, folder)
    else:
        config = config_from(ns.as_dict())
        # Absolute, so that evaluate and --resume from another folder find the same data.
        config.data.data_dir = str(Path(config.data.data_dir).resolve())
        folder = RunFolder(new_run_dir(config.out, ns.run_dir))
    # SIGTERM (a scheduler's preemption, `kill`) stops the study like Ctrl-C does; both
    # also set the flag the study checks between trials (boresnet/study/interrupts.py).
    forget_interrupts()
    previous = {s: signal.signal(s, handle_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = start_study(config, folder, resume=bool(ns.resume))
    except KeyboardInterrupt:
        done = len(read_journal(folder.journal))
        summary = folder.read_summary() if is_primary() else None
        finished = done >= config.search.budget or bool(summary and summary.get("stopped_early"))
        quoted = shlex.quote(str(folder))
        if summary is not None and summary.get("n_trials") == done and finished:
            # The report was complete: only the summary figures (or TensorBoard's flush)
            # were cut short. Still an interruption: a scheduler that requeues on 130
            # resumes, and the resume redraws them.
            print(
                f"\ninterrupted after the report was written ({folder.summary} is complete); "
                f"resume with: boresnet bo --resume {quoted} (or boresnet plot {quoted})",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        print(
            f"\ninterrupted: {done}/{config.search.budget} trials are saved in {folder}; "
            f"resume with: boresnet bo --resume {quoted}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK if report.best_objective is not None else EXIT_NO_RESULT


def cmd_evaluate(run_dir: str, data_dir: str | None, accelerator: str = "auto") -> int:
    """Print one JSON line: the test accuracy of ``RUN_DIR/best.ckpt``.

    Also counts the test images that were among the study's training images: such an
    accuracy is inflated, and a warning says so.
    """
    folder = RunFolder(run_dir)
    config = load_run_config(folder)
    if not folder.best_checkpoint.exists():
        raise CheckpointError(f"{folder.best_checkpoint} does not exist (has the study finished?)")
    train_dir = config.data.data_dir
    if data_dir:
        config.data.data_dir = data_dir
    config.trainer.accelerator = accelerator
    config.trainer.devices = 1 if accelerator != "auto" else "auto"
    config.trainer.strategy = "auto"
    config.trainer.num_nodes = 1
    config.trainer.progress_bar = False
    acc, n, _ = test_checkpoint(config, folder.best_checkpoint)
    overlap = overlap_count(train_dir, config.data.data_dir)
    if overlap:
        print(
            f"boresnet: warning: {overlap} of these {n} test images were in the study's "
            f"training images ({train_dir}): this accuracy is inflated",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "test_acc": acc,
                "n": n,
                "train_overlap": overlap,
                "checkpoint": str(folder.best_checkpoint),
                "data_dir": config.data.data_dir,
            }
        )
    )
    return EXIT_OK


def cmd_plot(run_dir: str) -> int:
    """Redraw every iteration figure and the summaries from the journal alone.

    The confusion matrix, which needs the test run, is redrawn from ``summary.json``.
    """
    folder = RunFolder(run_dir)
    config: Config = load_run_config(folder)
    records = read_journal(folder.journal, check_params=search_space(config).check)
    for k in range(2, len(records) + 1):
        save_iteration_figure(config, folder, records[:k])
    write_summary_figures(config, folder, records)
    summary = folder.read_summary()
    if summary and summary.get("confusion_matrix"):
        write_confusion_figure(folder, np.array(summary["confusion_matrix"]), summary["test_acc"])
    print(
        f"redrew {max(len(records) - 1, 0)} iteration figures and the summaries "
        f"in {Path(folder.figures)}"
    )
    return EXIT_OK
