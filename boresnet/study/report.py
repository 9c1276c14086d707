"""The end of a study: test the incumbent's model and say what was found.

The test split is read here and only here: the tuner never sees it. Writing the report
(``summary.json``, ``best.ckpt``, figures) is :mod:`boresnet.study.artefacts`' job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from boresnet.config.schema import Config
from boresnet.study.journal import TrialRecord
from boresnet.study.run_folder import RunFolder
from boresnet.training.classifier import ResNetClassifier
from boresnet.training.distributed import rank_zero_decides
from boresnet.training.trial import build_datamodule, build_trainer, run_trial
from boresnet.tuner import STATUSES, BayesianOptimizer

INCUMBENT_RULE = "lowest GP posterior mean among evaluated points"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or not loadable without running its code."""


def load_module(checkpoint: Path) -> ResNetClassifier:
    """Load a trained :class:`ResNetClassifier` from ``checkpoint``, safely.

    ``weights_only=True``: the file may come from anyone (a shared run folder, a bug
    report), and unpickling arbitrary objects would run code. Our own checkpoints hold
    only tensors and plain types, so they load; anything else is refused.

    Raises:
        CheckpointError: Missing, truncated, or holding more than weights.
    """
    if not checkpoint.is_file():
        raise CheckpointError(f"checkpoint {checkpoint} does not exist")
    try:
        return ResNetClassifier.load_from_checkpoint(
            str(checkpoint), map_location="cpu", weights_only=True
        )
    except Exception as err:  # noqa: BLE001 - any load failure is one message
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        # Name and reason first, the path last: a long line loses its middle (cli.one_line).
        raise CheckpointError(
            f"checkpoint {checkpoint.name} cannot be loaded safely (weights only): "
            f"{first[:100]}; file: {checkpoint}"
        ) from err


def test_checkpoint(config: Config, checkpoint: Path) -> tuple[float, int, np.ndarray | None]:
    """Evaluate a checkpoint on the test split: ``(accuracy, n, confusion matrix)``."""
    module = load_module(checkpoint)
    datamodule = build_datamodule(config)
    quiet = dataclasses.replace(
        config, trainer=dataclasses.replace(config.trainer, progress_bar=False)
    )
    trainer = build_trainer(quiet, logger=False)
    metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    confusion = module.last_confusion.numpy() if module.last_confusion is not None else None
    n = int(confusion.sum()) if confusion is not None else len(datamodule.test_set)
    return float(metrics["test_acc"]), n, confusion


def retrain(config: Config, folder: RunFolder, record: TrialRecord) -> None:
    """Train a trial again, with its parameters and seed, to restore its checkpoint.

    The clean-up at the end of a study keeps the incumbent's weights only, and after a
    resume the incumbent (lowest posterior mean) can move back to an earlier trial: the
    report then retrains it rather than fail. With its seed and its journalled thread
    count, so the same weights on the same CPU (a GPU's kernels may differ in the last
    bits).

    Raises:
        CheckpointError: The retrained trial did not end ``ok``.
    """
    result = run_trial(
        config,
        record.params,
        seed=record.seed if record.seed is not None else config.seed + record.index,
        log_dir=folder.path,
        name=folder.trials_logs_name,
        version=f"{folder.trial_version(record.index)}-retrained",
        checkpoint=folder.trial_checkpoint(record.index),
        threads=record.threads,
        length=record.length,
    )
    if result.status != "ok":
        raise CheckpointError(
            f"trial {record.index + 1}'s checkpoint is gone and retraining it ended "
            f"{result.status}: {result.error}"
        )


def trials_table(records: list[TrialRecord]) -> str:
    """A plain-text table of all trials."""
    names = list(records[0].params) if records else []
    short = any(r.length is not None for r in records)  # a fidelity: say each one's length
    head = f"{'#':>3} " + " ".join(f"{n:>12}" for n in names)
    head += f" {'epochs':>7}" if short else ""
    head += f" {'status':>9} {'objective':>10} {'val_acc':>8} {'seconds':>8}"
    rows = [head, "-" * len(head)]
    for r in records:
        obj = f"{r.objective:.4f}" if r.objective is not None else "-"
        acc = f"{r.val_acc:.4f}" if r.val_acc is not None else "-"
        length = ("full" if r.length is None else f"{r.length:g}") if short else ""
        rows.append(
            f"{r.index + 1:>3} "
            + " ".join(f"{r.params[n]:>12.5g}" for n in names)
            + (f" {length:>7}" if short else "")
            + f" {r.status:>9} {obj:>10} {acc:>8} {r.wall_s:>8.1f}"
        )
    return "\n".join(rows)


def bound_warning(name: str, side: str) -> str:
    """The advice printed (and drawn) when the incumbent sits at a bound of the range."""
    wider = "raise its high bound" if side == "upper" else "lower its low bound"
    return (
        f"warning: the best {name} lies at the {side} bound of the search range and the "
        f"model expects it to improve beyond it; {wider} (a decade further) and run again"
    )


@dataclass
class StudyReport:
    """What a study found: its incumbent, that incumbent's test accuracy, every trial.

    Attributes:
        objective: The minimised validation metric's name.
        records: Every journal record, in journal order.
        wall_s: Seconds of this invocation (a resumed study: since the resume).
        best_trial: The incumbent's trial index (``None``: no trial succeeded).
        best_params: Its point.
        best_objective: Its observed objective.
        best_val_acc: Its validation accuracy.
        test_acc: Its model's accuracy on the test split.
        test_n: How many test images.
        confusion: Its test confusion matrix (rows: true class).
        incumbent_at_bound: ``{name: "lower" | "upper"}`` for parameters at a bound.
        retrained_trial: The trial retrained because its checkpoint was gone.
        stopped_early: Why the study stopped before its budget (``None``: it did not).
    """

    objective: str
    records: list[TrialRecord]
    wall_s: float
    best_trial: int | None = None
    best_params: dict[str, float] | None = None
    best_objective: float | None = None
    best_val_acc: float | None = None
    test_acc: float | None = None
    test_n: int | None = None
    confusion: np.ndarray | None = None
    incumbent_at_bound: dict[str, str] = field(default_factory=dict)
    retrained_trial: int | None = None
    stopped_early: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as ``summary.json`` holds it."""
        data: dict[str, Any] = {
            "best_params": self.best_params,
            "best_objective": self.best_objective,
            "best_trial": self.best_trial,
            "test_acc": self.test_acc,
            "test_n": self.test_n,
            "objective": self.objective,
            "incumbent_rule": INCUMBENT_RULE,
            "incumbent_at_bound": self.incumbent_at_bound,
            "retrained_trial": self.retrained_trial,
        }
        if self.best_trial is not None:
            data["best_val_acc"] = self.best_val_acc
            # Full-length results only: a short run's loss is another function's.
            full = [r.objective for r in self.records if r.ok and r.length is None]
            data["best_observed_objective"] = min(full)
        data["trials"] = [r.to_dict() for r in self.records]
        data["n_trials"] = len(self.records)
        data["status_counts"] = {s: sum(r.status == s for r in self.records) for s in STATUSES}
        data["wall_s"] = round(self.wall_s, 2)
        data["trials_wall_s"] = round(sum(r.wall_s for r in self.records), 2)
        if self.confusion is not None:
            data["confusion_matrix"] = self.confusion.astype(int).tolist()
        data["stopped_early"] = self.stopped_early
        return data


def test_incumbent(
    config: Config,
    folder: RunFolder,
    records: list[TrialRecord],
    opt: BayesianOptimizer,
    wall_s: float,
) -> StudyReport:
    """Test the incumbent's model on the test split, retraining it if its weights are gone.

    The one place a study reads the test split. Every data-parallel rank calls this
    (the test run is collective); only rank 0 writes what it returns.

    Args:
        config: The study's configuration.
        folder: The run folder (the trials' checkpoints).
        records: Every journal record, in the order ``opt`` was told them.
        opt: The optimiser told ``records``: it names the incumbent.
        wall_s: Seconds of this invocation.
    """
    report = StudyReport(config.search.objective, list(records), wall_s)
    index = opt.best_index()
    if index is None:
        return report
    # Observations are told in journal order: the position finds the record, whose index
    # (its proposal number) names the checkpoint.
    record = records[index]
    if rank_zero_decides(not folder.trial_checkpoint(record.index).exists()):
        retrain(config, folder, record)
        report.retrained_trial = record.index
    acc, n, confusion = test_checkpoint(config, folder.trial_checkpoint(record.index))
    report.best_trial, report.best_params = record.index, dict(record.params)
    report.best_objective, report.best_val_acc = record.objective, record.val_acc
    report.test_acc, report.test_n, report.confusion = acc, n, confusion
    report.incumbent_at_bound = opt.incumbent_at_bound()
    return report


def report_text(report: StudyReport, summary_path: Path) -> str:
    """What the study prints at the end: the trials, the incumbent, any warning."""
    lines = ["", trials_table(report.records)]
    if report.best_trial is None:
        lines.append(
            "no trial finished with a finite objective: every trial diverged or failed. "
            "Narrow the search range (search.params) and start a new study."
        )
    else:
        params = " ".join(f"{k}={v:.5g}" for k, v in report.best_params.items())
        lines.append(
            f"\nbest: trial {report.best_trial + 1}, {params}, "
            f"{report.objective}={report.best_objective:.4f} (chosen by "
            f"{INCUMBENT_RULE}); test_acc={report.test_acc:.4f} on {report.test_n} "
            f"test images; {report.wall_s:.0f}s in all"
        )
    if report.retrained_trial is not None:
        lines.append(
            f"(trial {report.retrained_trial + 1}'s checkpoint had been cleaned up: it was "
            "retrained with its parameters and seed to test it)"
        )
    for name, side in report.incumbent_at_bound.items():
        lines.append(bound_warning(name, side))
    lines.append(f"summary: {summary_path}")
    return "\n".join(lines)
