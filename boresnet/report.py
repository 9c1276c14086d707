"""The end of a study: test the best model, write ``summary.json``, draw the summaries.

Also the two commands that need no training: ``boresnet evaluate`` (re-test
``best.ckpt`` on any KMNIST-layout folder) and ``boresnet plot`` (redraw every figure
from the journal alone).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from boresnet.config import Config
from boresnet.figures import (
    close,
    draw_confusion,
    draw_convergence,
    draw_iteration,
    iteration_title,
)
from boresnet.journal import JOURNAL, read_journal
from boresnet.optimizer import BayesianOptimizer


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or not loadable without running its code."""


def load_module(checkpoint: Path):
    """Load a trained :class:`ResNetClassifier` from ``checkpoint``, safely.

    ``weights_only=True``: the file may come from anyone (a shared run folder, a bug
    report), and unpickling arbitrary objects would run code. Our own checkpoints hold
    only tensors and plain types, so they load; anything else is refused.

    Raises:
        CheckpointError: Missing, truncated, or holding more than weights.
    """
    from boresnet.module import ResNetClassifier

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
    from boresnet.trial import build_datamodule, build_trainer

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


def trials_table(records: list[dict[str, Any]]) -> str:
    """A plain-text table of all trials."""
    names = list(records[0]["params"]) if records else []
    head = f"{'#':>3} " + " ".join(f"{n:>12}" for n in names)
    head += f" {'status':>9} {'objective':>10} {'val_acc':>8} {'seconds':>8}"
    rows = [head, "-" * len(head)]
    for r in records:
        obj = f"{r['objective']:.4f}" if r["objective"] is not None else "-"
        acc = f"{r['val_acc']:.4f}" if r.get("val_acc") is not None else "-"
        rows.append(
            f"{r['index'] + 1:>3} "
            + " ".join(f"{r['params'][n]:>12.5g}" for n in names)
            + f" {r['status']:>9} {obj:>10} {acc:>8} {r['wall_s']:>8.1f}"
        )
    return "\n".join(rows)


def final_report(
    config: Config,
    run_dir: Path,
    records: list[dict[str, Any]],
    opt: BayesianOptimizer,
    wall_s: float,
    say: Callable[[str], None],
    writer,
    primary: bool = True,
) -> dict[str, Any]:
    """Test the best trial's model and write ``summary.json`` and ``best.ckpt``."""
    best = opt.best()
    summary: dict[str, Any] = {
        "best_params": None,
        "best_objective": None,
        "best_trial": None,
        "test_acc": None,
        "test_n": None,
        "objective": config.search.objective,
        # The evaluated point with the lowest GP posterior mean (README "Which point
        # is reported"); its observed objective is best_objective.
        "incumbent_rule": "lowest posterior mean among evaluated points",
        "incumbent_at_bound": None,
        "incumbent_at_bound_params": {},
    }
    if best is None:
        say(
            "no trial finished with a finite objective: every trial diverged or failed. "
            "Narrow the search range (search.params) and start a new study."
        )
    else:
        index = opt.best_index()  # observations are told in journal order
        ckpt = run_dir / "checkpoints" / f"trial_{index:03d}.ckpt"
        if primary and ckpt.exists():
            shutil.copyfile(ckpt, run_dir / "best.ckpt")
        # Every rank reads the trial's own checkpoint: best.ckpt may still be copying.
        acc, n, confusion = test_checkpoint(config, ckpt)
        summary.update(
            best_params=best.params,
            best_objective=best.value,
            best_trial=index,
            test_acc=acc,
            test_n=n,
            best_val_acc=records[index].get("val_acc"),
            best_observed_objective=min(r["objective"] for r in records if r["status"] == "ok"),
        )
        at_bound = opt.incumbent_at_bound()
        if at_bound:
            summary["incumbent_at_bound"] = next(iter(at_bound.values()))
            summary["incumbent_at_bound_params"] = at_bound
        if primary and confusion is not None:
            summary["confusion_matrix"] = confusion.astype(int).tolist()
            fig = draw_confusion(confusion, acc)
            (run_dir / "figures").mkdir(exist_ok=True)
            fig.savefig(run_dir / "figures" / "confusion.png", dpi=110)
            if writer is not None:
                writer.add_figure("report/confusion_matrix", fig, close=False)
                writer.add_scalar("report/test_acc", acc)
            close(fig)
    summary["trials"] = records
    summary["n_trials"] = len(records)
    summary["status_counts"] = {
        s: sum(r["status"] == s for r in records) for s in ("ok", "diverged", "failed")
    }
    summary["wall_s"] = round(wall_s, 2)  # this invocation (a resumed study: since resume)
    summary["trials_wall_s"] = round(sum(r["wall_s"] for r in records), 2)
    if primary:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        say("\n" + trials_table(records))
        if best is not None:
            params = " ".join(f"{k}={v:.5g}" for k, v in best.params.items())
            say(
                f"\nbest: trial {summary['best_trial'] + 1}, {params}, "
                f"{config.search.objective}={best.value:.4f}; test_acc={summary['test_acc']:.4f} "
                f"on {summary['test_n']} test images; {wall_s:.0f}s in all"
            )
        for name, side in summary["incumbent_at_bound_params"].items():
            say(bound_warning(name, side))
        say(f"summary: {run_dir / 'summary.json'}")
    return summary


def bound_warning(name: str, side: str) -> str:
    """The advice printed (and drawn) when the incumbent sits at a bound of the range."""
    wider = "raise its high bound" if side == "upper" else "lower its low bound"
    return (
        f"warning: the best {name} lies at the {side} bound of the search range and the "
        f"model expects it to improve beyond it; {wider} (a decade further) and run again"
    )


def write_summary_figures(
    config: Config, run_dir: Path, records: list[dict[str, Any]], writer=None
) -> None:
    """Draw the small-multiples summary of all iterations and the convergence plot."""
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    fig = draw_convergence([r["objective"] for r in records], [r["status"] for r in records])
    fig.savefig(figures / "convergence.png", dpi=110)
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
    final = BayesianOptimizer.from_config(config, records)
    notes = [bound_warning(n, side) for n, side in final.incumbent_at_bound().items()]
    fig.suptitle(
        "\n".join(["Bayesian optimisation, iteration by iteration", *notes]),
        y=0.995,
        color="black" if not notes else "#b30000",
    )
    fig.savefig(figures / "summary.png", dpi=90, bbox_inches="tight")
    if writer is not None:
        writer.add_figure("report/summary", fig, close=False)
    close(fig)


def _load(run_dir: str) -> tuple[Path, Config, list[dict[str, Any]]]:
    from boresnet.resume import load_run_config

    path = Path(run_dir)
    config = load_run_config(path)
    return path, config, read_journal(path / JOURNAL)


def cmd_evaluate(run_dir: str, data_dir: str | None, accelerator: str = "auto") -> int:
    """Print one JSON line: the test accuracy of ``RUN_DIR/best.ckpt``.

    Also counts the test images that were among the study's training images: such an
    accuracy is inflated, and a warning says so.
    """
    from boresnet.data import overlap_count

    path, config, _ = _load(run_dir)
    ckpt = path / "best.ckpt"
    if not ckpt.exists():
        print(f"boresnet: error: {ckpt} does not exist (has the study finished?)", file=sys.stderr)
        return 2
    train_dir = config.data.data_dir
    if data_dir:
        config.data.data_dir = data_dir
    config.trainer.accelerator = accelerator
    config.trainer.devices = 1 if accelerator != "auto" else "auto"
    config.trainer.strategy = "auto"
    config.trainer.progress_bar = False
    acc, n, _ = test_checkpoint(config, ckpt)
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
                "checkpoint": str(ckpt),
                "data_dir": config.data.data_dir,
            }
        )
    )
    return 0


def cmd_plot(run_dir: str) -> int:
    """Redraw every iteration figure and the summaries from the journal alone.

    The confusion matrix, which needs the test run, is redrawn from ``summary.json``.
    """
    path, config, records = _load(run_dir)
    (path / "figures").mkdir(exist_ok=True)
    for k in range(2, len(records) + 1):
        past = BayesianOptimizer.from_config(config, records[:k])
        nxt = past.ask()
        fig = draw_iteration(past, nxt, title=iteration_title(k, config.search.budget, nxt))
        fig.savefig(path / "figures" / f"iteration_{k:02d}.png", dpi=110)
        close(fig)
    write_summary_figures(config, path, records)
    summary_path = path / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("confusion_matrix"):
            fig = draw_confusion(np.array(summary["confusion_matrix"]), summary["test_acc"])
            fig.savefig(path / "figures" / "confusion.png", dpi=110)
            close(fig)
    print(
        f"redrew {max(len(records) - 1, 0)} iteration figures and the summaries "
        f"in {path / 'figures'}"
    )
    return 0
