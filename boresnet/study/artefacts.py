"""The one place a study's figures and report are written: PNGs, TensorBoard, summary.json.

The plots (:mod:`boresnet.plots`) draw what they are given; this module builds the
optimiser states they draw from the journal alone (:mod:`boresnet.study.adapter`), so
the study, a resume and ``boresnet plot`` draw the same figures, and saves each figure
atomically in the run folder and, when a writer is given, to TensorBoard.
"""

from __future__ import annotations

import io
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from boresnet.config.schema import Config
from boresnet.plots.common import close
from boresnet.plots.iteration import draw_iteration, iteration_title
from boresnet.plots.maps import draw_maps
from boresnet.plots.summary import draw_confusion, draw_convergence, draw_summary
from boresnet.study.adapter import build_optimizer
from boresnet.study.journal import TrialRecord
from boresnet.study.report import StudyReport, bound_warning
from boresnet.study.run_folder import RunFolder
from boresnet.tuner import BayesianOptimizer, Pending, SearchExhausted


def publish(
    folder: RunFolder,
    fig: Figure,
    target: Path,
    writer: SummaryWriter | None,
    tag: str,
    step: int | None = None,
    **savefig,
) -> None:
    """Save ``fig`` as ``target`` (atomically), log it to TensorBoard as ``tag``, close it.

    Rendered once: TensorBoard gets the very PNG the folder keeps (``add_figure`` would
    draw the figure a second time, a fifth of a tiny study's time).
    """
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", **savefig)
        png = buffer.getvalue()
        folder.save(target, lambda path: path.write_bytes(png))
        if writer is not None:
            image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            writer.add_image(tag, image, global_step=step, dataformats="HWC")
    finally:
        close(fig)


def save_iteration_figure(
    config: Config,
    folder: RunFolder,
    records: list[TrialRecord],
    writer: SummaryWriter | None = None,
    opt: BayesianOptimizer | None = None,
    running: Sequence[Pending] = (),
) -> None:
    """Draw and save the figure of the iteration after ``len(records)`` evaluations.

    The one function that makes iteration figures: the study after each trial, resume
    for figures a kill skipped, and ``boresnet plot``.

    Args:
        config: The study's configuration (its budget titles the figure).
        folder: The run folder.
        records: The first ``k`` journal records.
        writer: TensorBoard ``SummaryWriter`` to log the figure to (optional).
        opt: The optimiser already told exactly these records (the study's own), so
            that its fitted models and proposal are reused; rebuilt from them if absent.
        running: The trials in flight (several at once): drawn, and told to the
            proposal as pending, as the study does next.
    """
    k = len(records)
    if opt is None or len(opt.observations) != k:
        opt = build_optimizer(config, records)
    try:
        if running and opt.done(running):
            next_params, kind = None, "in flight"  # the budget's last trials are running
        else:
            next_params, kind = opt.ask(pending=running), opt.last_proposal_kind
    except SearchExhausted:
        next_params, kind = None, "exhausted"
    compute = None
    if opt.fidelity is not None:
        compute = f"{opt.spent():.3g} of {config.search.budget} full trainings spent"
    title = iteration_title(
        k, config.search.budget, next_params, kind, len(running), compute, opt.done()
    )
    fig = draw_iteration(opt, next_params, title=title, running=running)
    publish(folder, fig, folder.iteration_figure(k), writer, "bo/iteration", k, dpi=110)
    if opt.space.dim == 2:
        fig = draw_maps(opt, next_params, running, title=title)
        publish(folder, fig, folder.map_figure(k), writer, "bo/map", k, dpi=100)
    if writer is not None:
        writer.flush()


def write_summary_figures(
    config: Config,
    folder: RunFolder,
    records: list[TrialRecord],
    writer: SummaryWriter | None = None,
) -> None:
    """Draw and save the convergence plot and the small multiples of every iteration.

    With a fidelity the convergence plot shows full-length results only: a short run's
    loss is not comparable with them (its evaluation number stays, without a point).
    """
    values = [r.objective if r.length is None else None for r in records]
    fig = draw_convergence(values, [r.status for r in records])
    publish(folder, fig, folder.figure("convergence"), writer, "report/convergence", dpi=110)
    if len(records) < 2:
        return
    states = []
    for k in range(2, len(records) + 1):
        past = build_optimizer(config, records[:k])
        try:
            nxt = past.ask() if k < len(records) else None
        except SearchExhausted:  # the range was used up there (several trials in flight)
            nxt = None
        states.append((past, nxt))
    last = states[-1][0]
    notes = [bound_warning(n, side) for n, side in last.incumbent_at_bound().items()]
    fig = draw_summary(states, notes)
    publish(
        folder, fig, folder.figure("summary"), writer, "report/summary",
        dpi=90, bbox_inches="tight",
    )  # fmt: skip


def write_confusion_figure(
    folder: RunFolder,
    confusion: np.ndarray,
    test_acc: float,
    writer: SummaryWriter | None = None,
) -> None:
    """Draw and save the incumbent's test confusion matrix."""
    fig = draw_confusion(confusion, test_acc)
    publish(folder, fig, folder.figure("confusion"), writer, "report/confusion_matrix", dpi=110)


def write_report(
    folder: RunFolder, report: StudyReport, writer: SummaryWriter | None = None
) -> None:
    """Write ``best.ckpt``, the confusion figure and ``summary.json`` (rank 0)."""
    if report.best_trial is not None:
        source = folder.trial_checkpoint(report.best_trial)
        folder.save(folder.best_checkpoint, lambda path: shutil.copyfile(source, path))
    if report.confusion is not None and report.test_acc is not None:
        write_confusion_figure(folder, report.confusion, report.test_acc, writer)
        if writer is not None:
            writer.add_scalar("report/test_acc", report.test_acc)
    folder.write_summary(report.to_dict())


def log_trial(
    writer: SummaryWriter, folder: RunFolder, record: TrialRecord, best: float | None
) -> None:
    """Log a finished trial's point and result, and the best so far, to TensorBoard."""
    step = record.index + 1
    for name, value in record.params.items():
        writer.add_scalar(f"bo/{name}", value, step)
    if record.length is not None:
        writer.add_scalar("bo/epochs", record.length, step)
    if record.objective is not None:
        writer.add_scalar("bo/objective", record.objective, step)
    if best is not None:
        writer.add_scalar("bo/best_objective", best, step)
    # TensorBoard's HParams view: each trial's parameters against its results.
    metrics = {"hparam/objective": record.objective, "hparam/val_acc": record.val_acc}
    writer.add_hparams(
        {**record.params, "status": record.status},
        {k: (v if v is not None else float("nan")) for k, v in metrics.items()},
        run_name=f"hparams/{folder.trial_version(record.index)}",
        global_step=step,
    )


def close_writer(writer: SummaryWriter, folder: RunFolder) -> None:
    """Close TensorBoard's writer; a failure (a full disk) is one line, not an error.

    The report is complete by then: only the event file is cut short. The writer's
    background thread, whose failure would print a traceback, is quieted by
    :func:`quiet_writer_threads`.
    """
    try:
        writer.close()
    except OSError as err:
        print(
            f"boresnet: warning: TensorBoard's event file in {folder.study_logs} "
            f"is incomplete ({err.strerror or err}); the report is complete",
            file=sys.stderr,
            flush=True,
        )


def quiet_writer_threads(args: threading.ExceptHookArgs) -> None:
    """A ``threading.excepthook`` that quiets the OSError of TensorBoard's writer thread.

    :func:`close_writer` reports that failure in one line; every other thread's
    exception goes to the default hook.
    """
    writer_thread = type(args.thread).__module__.startswith("tensorboard.")
    if not (writer_thread and issubclass(args.exc_type, OSError)):
        threading.__excepthook__(args)
