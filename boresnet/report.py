"""The end of a study: test the incumbent's model, write ``summary.json``, draw summaries.

The test split is read here and only here: the tuner never sees it.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from boresnet.config import Config
from boresnet.figures import close, draw_confusion, draw_convergence, draw_iteration
from boresnet.journal import TrialRecord
from boresnet.module import ResNetClassifier
from boresnet.run_folder import RunFolder
from boresnet.trial import build_datamodule, build_trainer, run_trial
from boresnet.tuner import BayesianOptimizer

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
        raise CheckpointError(
            f"cannot load checkpoint {checkpoint} safely (weights only): {first[:200]}"
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
    report then retrains it rather than fail. Seeded, so the same weights on a CPU (a
    GPU's kernels may differ in the last bits).

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
    )
    if result.status != "ok":
        raise CheckpointError(
            f"trial {record.index + 1}'s checkpoint is gone and retraining it ended "
            f"{result.status}: {result.error}"
        )


def trials_table(records: list[TrialRecord]) -> str:
    """A plain-text table of all trials."""
    names = list(records[0].params) if records else []
    head = f"{'#':>3} " + " ".join(f"{n:>12}" for n in names)
    head += f" {'status':>9} {'objective':>10} {'val_acc':>8} {'seconds':>8}"
    rows = [head, "-" * len(head)]
    for r in records:
        obj = f"{r.objective:.4f}" if r.objective is not None else "-"
        acc = f"{r.val_acc:.4f}" if r.val_acc is not None else "-"
        rows.append(
            f"{r.index + 1:>3} "
            + " ".join(f"{r.params[n]:>12.5g}" for n in names)
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


def summarise(
    config: Config,
    folder: RunFolder,
    records: list[TrialRecord],
    opt: BayesianOptimizer,
    wall_s: float,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Test the incumbent's model; return the summary and the test confusion matrix.

    Every data-parallel rank calls this (the test run is collective); only rank 0
    writes what it returns (:func:`write_report`).
    """
    best = opt.best()
    summary: dict[str, Any] = {
        "best_params": None,
        "best_objective": None,
        "best_trial": None,
        "test_acc": None,
        "test_n": None,
        "objective": config.search.objective,
        "incumbent_rule": INCUMBENT_RULE,
        "incumbent_at_bound": {},
        "retrained_trial": None,
    }
    confusion = None
    if best is not None:
        # Observations are told in journal order: the position finds the record, whose
        # index (its proposal number) names the checkpoint.
        record = records[opt.best_index()]
        index = record.index
        if not folder.trial_checkpoint(index).exists():
            retrain(config, folder, record)
            summary["retrained_trial"] = index
        acc, n, confusion = test_checkpoint(config, folder.trial_checkpoint(index))
        summary.update(
            best_params=best.params,
            best_objective=best.value,
            best_trial=index,
            test_acc=acc,
            test_n=n,
            best_val_acc=record.val_acc,
            best_observed_objective=min(r.objective for r in records if r.ok),
        )
        # Every parameter at a bound, each with its side ({} when none is).
        summary["incumbent_at_bound"] = opt.incumbent_at_bound()
    summary["trials"] = [r.to_dict() for r in records]
    summary["n_trials"] = len(records)
    summary["status_counts"] = {
        s: sum(r.status == s for r in records) for s in ("ok", "diverged", "failed")
    }
    summary["wall_s"] = round(wall_s, 2)  # this invocation (a resumed study: since resume)
    summary["trials_wall_s"] = round(sum(r.wall_s for r in records), 2)
    if confusion is not None:
        summary["confusion_matrix"] = confusion.astype(int).tolist()
    return summary, confusion


def write_report(folder: RunFolder, summary: dict[str, Any], writer=None) -> None:
    """Write ``summary.json``, ``best.ckpt`` and the confusion figure (rank 0)."""
    if summary["best_trial"] is not None:
        source = folder.trial_checkpoint(summary["best_trial"])
        folder.save(folder.best_checkpoint, lambda path: shutil.copyfile(source, path))
    if summary.get("confusion_matrix"):
        fig = draw_confusion(np.array(summary["confusion_matrix"]), summary["test_acc"])
        folder.save(folder.figure("confusion"), lambda path: fig.savefig(path, dpi=110))
        if writer is not None:
            writer.add_figure("report/confusion_matrix", fig, close=False)
            writer.add_scalar("report/test_acc", summary["test_acc"])
        close(fig)
    folder.write_summary(summary)


def report_text(config: Config, folder: RunFolder, summary: dict[str, Any]) -> str:
    """What the study prints at the end: the trials, the incumbent, any warning."""
    records = [TrialRecord.from_dict(t) for t in summary["trials"]]
    lines = ["", trials_table(records)]
    if summary["best_trial"] is None:
        lines.append(
            "no trial finished with a finite objective: every trial diverged or failed. "
            "Narrow the search range (search.params) and start a new study."
        )
    else:
        params = " ".join(f"{k}={v:.5g}" for k, v in summary["best_params"].items())
        lines.append(
            f"\nbest: trial {summary['best_trial'] + 1}, {params}, "
            f"{config.search.objective}={summary['best_objective']:.4f} (chosen by "
            f"{INCUMBENT_RULE}); test_acc={summary['test_acc']:.4f} on {summary['test_n']} "
            f"test images; {summary['wall_s']:.0f}s in all"
        )
    if summary.get("retrained_trial") is not None:
        lines.append(
            f"(trial {summary['retrained_trial'] + 1}'s checkpoint had been cleaned up: it was "
            "retrained with its parameters and seed to test it)"
        )
    for name, side in summary["incumbent_at_bound"].items():
        lines.append(bound_warning(name, side))
    lines.append(f"summary: {folder.summary}")
    return "\n".join(lines)


def write_summary_figures(
    config: Config, folder: RunFolder, records: list[TrialRecord], writer=None
) -> None:
    """Draw the small-multiples summary of all iterations and the convergence plot."""
    fig = draw_convergence([r.objective for r in records], [r.status for r in records])
    folder.save(folder.figure("convergence"), lambda path: fig.savefig(path, dpi=110))
    if writer is not None:
        writer.add_figure("report/convergence", fig, close=False)
    close(fig)
    iterations = list(range(2, len(records) + 1))
    if not iterations:
        return
    d = len(config.search.params)
    cols = min(len(iterations), 3) if d == 1 else 1
    rows = math.ceil(len(iterations) / cols)
    fig = plt.figure(figsize=(4.2 * cols * d, 3.3 * rows))
    outer = fig.add_gridspec(rows, cols, hspace=0.45, wspace=0.25)
    final = None
    for slot, k in enumerate(iterations):
        inner = outer[slot // cols, slot % cols].subgridspec(
            2, d, height_ratios=[2.2, 1], hspace=0.05
        )
        axes = [[fig.add_subplot(inner[r, j]) for j in range(d)] for r in range(2)]
        for j in range(d):
            axes[1][j].sharex(axes[0][j])
            axes[0][j].tick_params(labelbottom=False)
        past = BayesianOptimizer.from_config(config, records[:k])
        nxt = past.ask() if k < len(records) else None
        draw_iteration(past, nxt, axes=axes, title=f"after {k} evaluations", compact=True)
        final = past
    notes = [bound_warning(n, side) for n, side in final.incumbent_at_bound().items()]
    fig.suptitle(
        "\n".join(["Bayesian optimisation, iteration by iteration", *notes]),
        y=0.995,
        color="#b30000" if notes else "black",
    )
    folder.save(
        folder.figure("summary"), lambda path: fig.savefig(path, dpi=90, bbox_inches="tight")
    )
    if writer is not None:
        writer.add_figure("report/summary", fig, close=False)
    close(fig)
