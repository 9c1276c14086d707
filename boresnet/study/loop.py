"""The study: propose, train, record, draw; repeat to the budget; then report.

Everything a study produces lives in one :class:`~boresnet.run_folder.RunFolder`. Under
data parallelism every rank runs this loop (Lightning re-launches the command); only
rank 0 writes, and the ranks agree on every proposal because they see the same
(rank-reduced) results.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from torch.utils.tensorboard import SummaryWriter

from boresnet.config.schema import Config, to_dict
from boresnet.study.adapter import build_optimizer, search_space, trial_point, tuner_point
from boresnet.study.artefacts import (
    close_writer,
    log_trial,
    quiet_writer_threads,
    save_iteration_figure,
    write_report,
    write_summary_figures,
)
from boresnet.study.interrupts import raise_if_interrupted
from boresnet.study.journal import TrialRecord, append_record, next_index, read_journal
from boresnet.study.lock import RunLock
from boresnet.study.report import StudyReport, report_text, test_incumbent
from boresnet.study.resume import fingerprinted_fields, study_fingerprint
from boresnet.study.run_folder import RUN_DIR_ENV, RunFolder
from boresnet.study.runners import EngineError, RayRunner, SerialRunner, Trial
from boresnet.training.distributed import is_primary
from boresnet.training.faults import MachineFault
from boresnet.training.trial import TrialResult, check_data, check_hardware
from boresnet.tuner import BayesianOptimizer, Pending, SearchExhausted

# Rank 0 hands its first trial number to the data-parallel ranks here.
START_INDEX_ENV = "BORESNET_START_INDEX"


class StudyError(RuntimeError):
    """The study cannot go on (e.g. too many failed trials in a row)."""


class Study:
    """One study in one run folder.

    Args:
        config: The resolved configuration.
        folder: The run folder.
        data_sha: The fingerprint of the data (:func:`~boresnet.trial.check_data`).
        out: Stream for progress lines.
    """

    def __init__(
        self, config: Config, folder: RunFolder, data_sha: str, out: TextIO | None = None
    ) -> None:
        self.config = config
        self.data_sha = data_sha
        self.folder = folder
        self.out = out if out is not None else sys.stdout
        self.primary = is_primary()
        self._writer: SummaryWriter | None = None

    @property
    def writer(self) -> SummaryWriter:
        """TensorBoard writer for the study's figures and scalars (rank 0 only)."""
        if self._writer is None:
            self._writer = SummaryWriter(str(self.folder.study_logs))
        return self._writer

    def say(self, text: str) -> None:
        """Print a progress line (rank 0 only)."""
        if self.primary:
            print(text, file=self.out, flush=True)

    def _record(
        self,
        index: int,
        params: dict[str, float],
        result: TrialResult,
        seed: int,
        kind: str,
        pending: list[int] | None = None,
        length: float | None = None,
    ) -> TrialRecord:
        return TrialRecord(
            index=index,
            params=params,
            status=result.status,
            objective=result.objective,
            val_loss=result.val_loss,
            val_acc=result.val_acc,
            error=result.error,
            epochs=result.epochs,
            wall_s=result.wall_s,
            seed=seed,
            proposal=kind,
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            space=search_space(self.config).describe(),
            config_sha=study_fingerprint(self.config),
            data_sha=self.data_sha,
            pending=pending,
            threads=result.threads,
            length=length,
        )

    def _progress(
        self, opt: BayesianOptimizer, rec: TrialRecord, done: int, running: int = 0
    ) -> None:
        budget = self.config.search.budget
        params = " ".join(f"{k}={v:.4g}" for k, v in rec.params.items())
        counter = f"{done:>2}/{max(budget, done)}"
        fidelity = opt.fidelity
        if fidelity is not None:
            length = fidelity.full if rec.length is None else rec.length
            counter = f"{done:>2}/.."
            params += (
                f" {fidelity.name}={length:g} ({fidelity.cost(length):.3g} of a full training; "
                f"{opt.spent():.3g} of {budget} spent)"
            )
        if rec.ok:
            outcome = f"objective={rec.objective:.4f} val_acc={rec.val_acc:.4f}"
        else:
            outcome = f"{rec.status.upper()}: {rec.error}"
        best = opt.best()
        best_txt = (
            f"best={best.value:.4f} ("
            + " ".join(f"{k}={v:.4g}" for k, v in best.params.items() if k in rec.params)
            + ")"
            if best
            else "best=none yet"
        )
        in_flight = f"  [{running} running]" if running else ""
        self.say(
            f"[{counter}] {params}  {outcome}  {best_txt}  "
            f"{rec.wall_s:.1f}s  ({rec.proposal}){in_flight}"
        )

    def _prune_checkpoints(self, opt: BayesianOptimizer, records: list[TrialRecord]) -> None:
        # Only at the end: the incumbent (lowest posterior mean) can move back to an
        # earlier trial as the GP learns, so every success keeps its weights until then.
        # Observations are told in journal order: the position finds the record.
        keep = opt.best_index()
        self.folder.remove_checkpoints(set() if keep is None else {records[keep].index})

    def _draw(
        self,
        records: list[TrialRecord],
        k: int,
        opt: BayesianOptimizer | None = None,
        running: Sequence[Pending] = (),
    ) -> None:
        if self.primary and k >= 2:
            save_iteration_figure(
                self.config, self.folder, records[:k], self.writer, opt, running=running
            )

    def _check_failures(self, failures: int, records: list[TrialRecord]) -> None:
        if failures >= self.config.search.max_consecutive_failures:
            raise StudyError(
                f"{failures} trials failed in a row (last: {records[-1].error}); "
                "stopping the study. Fix the cause and resume with: "
                f"boresnet bo --resume {shlex.quote(str(self.folder))}"
            )

    def _exhausted(self, records: list[TrialRecord], running: int = 0) -> str:
        after = f"{len(records)} trials" + (f" ({running} still running)" if running else "")
        stopped = (
            "the search range is exhausted at search.min_distance = "
            f"{self.config.search.min_distance}: no untried point is left after "
            f"{after}; stopping early (widen search.params or lower search.min_distance)"
        )
        self.say(stopped)
        return stopped

    def _trial_paths(self, index: int) -> dict[str, Any]:
        """``run_trial``'s log and checkpoint arguments for trial ``index``."""
        return {
            "log_dir": self.folder.path,
            "name": self.folder.trials_logs_name,
            "version": self.folder.trial_version(index),
            "checkpoint": self.folder.trial_checkpoint(index),
        }

    def _finish(
        self,
        opt: BayesianOptimizer,
        records: list[TrialRecord],
        rec: TrialRecord,
        running: int = 0,
    ) -> None:
        """Journal a finished trial, tell the optimiser, log and print it."""
        if self.primary:
            append_record(self.folder.journal, rec)
        records.append(rec)
        opt.tell(tuner_point(self.config, rec.params, rec.length), rec.objective, rec.status)
        if self.primary:
            best = opt.best()
            log_trial(self.writer, self.folder, rec, None if best is None else best.value)
        self._progress(opt, rec, len(records), running)

    def run(self) -> StudyReport:
        """Run the study to its budget (continuing a journal) and write the report."""
        started = time.perf_counter()
        space = search_space(self.config)
        records = read_journal(self.folder.journal, repair=self.primary, check_params=space.check)
        budget = self.config.search.budget
        # Other data than the journal's trials were trained on stops here (a moved data
        # folder must hold the same images and labels).
        trained_on = {r.data_sha for r in records if r.data_sha is not None}
        if trained_on - {self.data_sha}:
            raise StudyError(
                f"the data in {self.config.data.data_dir} (fingerprint {self.data_sha}) is "
                "not the data this study's trials were trained on "
                f"({', '.join(sorted(trained_on))}); resume with the original data folder"
            )
        if records:
            self.say(f"resuming {self.folder}: {len(records)} trials done, budget {budget}")
            for k in range(2, len(records) + 1):
                if not self.folder.iteration_figure(k).exists():
                    self._draw(records, k)
        opt = build_optimizer(self.config, records)
        failures = 0
        for r in reversed(records):
            if r.status != "failed":
                break
            failures += 1
        stopped = self._run_trials(opt, records, failures)
        if self.primary:
            self._prune_checkpoints(opt, records)
        report = test_incumbent(
            self.config, self.folder, records, opt, time.perf_counter() - started
        )
        report.stopped_early = stopped
        if self.primary:
            write_report(self.folder, report, self.writer)
            self.say(report_text(report, self.folder.summary))
            write_summary_figures(self.config, self.folder, records, self.writer)
            close_writer(self.writer, self.folder)
        return report

    def _first_index(self, records: list[TrialRecord]) -> int:
        """This invocation's first trial number: past every journalled and claimed one.

        Rank 0 decides and hands it to the data-parallel ranks Lightning launches
        (through the environment): by the time they look, rank 0 has claimed more.
        """
        if not self.primary and START_INDEX_ENV in os.environ:
            return int(os.environ[START_INDEX_ENV])
        index = max(next_index(records), self.folder.next_unclaimed())
        if self.primary:
            os.environ[START_INDEX_ENV] = str(index)
        return index

    def runner(self) -> SerialRunner | RayRunner:
        """Where the trials run: this process, or Ray for ``search.parallel`` > 1."""
        if self.config.search.parallel > 1:
            return RayRunner(self.config)
        return SerialRunner(self.config)

    def _run_trials(
        self, opt: BayesianOptimizer, records: list[TrialRecord], failures: int
    ) -> str | None:
        """Up to ``search.parallel`` trials in flight; a new proposal as each ends.

        Each proposal is told the points still running (``pending``); the journal gets
        one line per finished trial, in the order they finish. Leaving (an error, a
        Ctrl-C) cancels what still runs. Returns why the study stopped early, if it did.
        """
        parallel = self.config.search.parallel
        index, stopped = self._first_index(records), None
        with self.runner() as runner:
            if parallel > 1:
                self.say(f"up to {parallel} trials at once on {runner.describe()}")
            while True:
                while (
                    stopped is None
                    and len(runner.running) < parallel
                    and not opt.done(self._pending(runner.running))
                ):
                    raise_if_interrupted()  # a Ctrl-C swallowed during a trial stops here
                    self._check_failures(failures, records)
                    running = runner.running
                    try:
                        point = opt.ask(pending=self._pending(running))
                    except SearchExhausted:
                        stopped = self._exhausted(records, len(running))
                        break
                    params, length = trial_point(self.config, point)
                    trial = Trial(
                        index, params, opt.last_proposal_kind,
                        self.config.seed + len(records) + len(running),  # as unbroken
                        [r.index for r in running] if parallel > 1 else None, length,
                    )  # fmt: skip
                    if self.primary:
                        self.folder.claim(index)  # a trial lost in flight keeps its number
                    runner.submit(trial, **self._trial_paths(index), length=length)
                    index += 1
                    if parallel > 1:
                        point = " ".join(f"{k}={v:.4g}" for k, v in params.items())
                        self.say(
                            f"[started] trial {trial.index + 1}: {point}  ({trial.kind})  "
                            f"[{len(runner.running)} running]"
                        )
                if not runner.running:
                    return stopped
                lost = (
                    f"trial {runner.running[0].index + 1} was not journalled"
                    if parallel == 1
                    else "the trials in flight were not journalled"
                )
                try:
                    trial, result = runner.wait()
                except MachineFault as err:
                    raise MachineFault(
                        f"{err}; {lost}: resume with "
                        f"boresnet bo --resume {shlex.quote(str(self.folder))}"
                    ) from err
                rec = self._record(
                    trial.index, trial.params, result, trial.seed, trial.kind, trial.pending,
                    trial.length,
                )  # fmt: skip
                self._finish(opt, records, rec, running=len(runner.running))
                failures = failures + 1 if result.status == "failed" else 0
                self._draw(records, len(records), opt, self._pending(runner.running))

    def _pending(self, running: Sequence[Trial]) -> list[Pending]:
        """The trials in flight as the tuner's pending points (with their lengths)."""
        return [Pending(tuner_point(self.config, r.params, r.length), r.kind) for r in running]


def start_study(config: Config, folder: RunFolder, resume: bool) -> StudyReport:
    """Check the machine and the data, claim (or adopt) the folder, lock it, write the config, run.

    Both checks first: a GPU asked for where there is none, or a broken dataset, is one
    error before anything is written (never a failed trial, never a half-made run folder).
    """
    check_hardware(config)
    data_sha = check_data(config)
    if config.search.parallel > 1:
        RayRunner(config).preflight()
    previous_hook = threading.excepthook
    threading.excepthook = quiet_writer_threads
    try:
        if not is_primary():
            return Study(config, folder, data_sha).run()
        if resume:
            folder.adopt()
        else:
            folder.create()
        # Data-parallel ranks re-run this command: they must find rank 0's folder.
        os.environ[RUN_DIR_ENV] = str(folder.path)
        try:
            with RunLock(folder.lock):
                # Written on resume too: a raised budget must reach config.yaml (plot reads it).
                folder.start(to_dict(config))
                folder.write_origin(fingerprinted_fields(config))  # once: what a resume keeps
                print(
                    f"study folder: {folder}  (TensorBoard: tensorboard --logdir "
                    f"{shlex.quote(str(folder))})",
                    flush=True,
                )
                return Study(config, folder, data_sha).run()
        except EngineError:
            # Ray refused the claim before any trial (a cluster's machines too small):
            # leave no folder that would refuse the corrected command.
            if not resume and folder.journal.is_file() and folder.journal.stat().st_size == 0:
                folder.discard()
            raise
    finally:
        os.environ.pop(RUN_DIR_ENV, None)
        os.environ.pop(START_INDEX_ENV, None)
        threading.excepthook = previous_hook
