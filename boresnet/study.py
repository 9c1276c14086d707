"""The study: propose, train, record, draw; repeat to the budget; then report.

Everything a study produces lives in one run folder: ``config.yaml``, the journal
``trials.jsonl``, ``figures/``, TensorBoard event files (``study/`` for the BO figures
and scalars, ``trials/`` for each trial's training curves), ``checkpoints/`` and, at the
end, ``summary.json`` and ``best.ckpt``. Under data parallelism every rank runs this loop
(Lightning re-launches the command); only rank 0 writes, and the ranks agree on every
proposal because they see the same (rank-reduced) results.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from boresnet.config import Config, to_dict
from boresnet.figures import close, draw_iteration, iteration_title
from boresnet.journal import JOURNAL, RunLock, append_record, read_journal
from boresnet.optimizer import BayesianOptimizer
from boresnet.report import final_report, write_summary_figures
from boresnet.resume import check_resume, load_run_config, study_fingerprint
from boresnet.space import SearchSpace
from boresnet.trial import run_trial

RUN_DIR_ENV = "BORESNET_RUN_DIR"


class StudyError(RuntimeError):
    """The study cannot go on (e.g. too many failed trials in a row)."""


def is_primary() -> bool:
    """Whether this process is global rank 0 (the one that writes files)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        if int(os.environ.get(var, "0") or 0) != 0:
            return False
    return True


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and prove it writable, before any training starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise StudyError(f"output folder {folder} is not writable: {err.strerror or err}") from err


def figure_path(run_dir: Path, iteration: int) -> Path:
    """Where the figure of iteration ``iteration`` (after that many trials) goes."""
    return run_dir / "figures" / f"iteration_{iteration:02d}.png"


class Study:
    """One study in one run folder.

    Args:
        config: The resolved configuration.
        run_dir: The run folder.
        out: Stream for progress lines.
    """

    def __init__(self, config: Config, run_dir: Path, out=None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.out = out if out is not None else sys.stdout
        self.primary = is_primary()
        self.journal = self.run_dir / JOURNAL
        self.ckpt_dir = self.run_dir / "checkpoints"
        self._writer = None

    @property
    def writer(self):
        """TensorBoard writer for the study's figures and scalars (rank 0 only)."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "study"))
        return self._writer

    def say(self, text: str) -> None:
        """Print a progress line (rank 0 only)."""
        if self.primary:
            print(text, file=self.out, flush=True)

    def draw(self, opt: BayesianOptimizer, iteration: int, next_params: dict | None) -> None:
        """Save and log the figure of one iteration."""
        if not self.primary or iteration < 2:
            return
        title = iteration_title(iteration, self.config.search.budget, next_params)
        fig = draw_iteration(opt, next_params, title=title)
        path = figure_path(self.run_dir, iteration)
        path.parent.mkdir(exist_ok=True)
        fig.savefig(path, dpi=110)
        self.writer.add_figure("bo/iteration", fig, global_step=iteration, close=False)
        self.writer.flush()
        close(fig)

    def _record(self, index: int, params: dict, result, seed: int, kind: str) -> dict:
        return {
            "index": index,
            "params": params,
            "objective": result.objective,
            "val_loss": result.val_loss,
            "val_acc": result.val_acc,
            "status": result.status,
            "error": result.error,
            "epochs": result.epochs,
            "wall_s": result.wall_s,
            "seed": seed,
            "proposal": kind,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "space": SearchSpace(self.config.search.params).describe(),
            "config_sha": study_fingerprint(self.config),
        }

    def _progress(self, opt: BayesianOptimizer, rec: dict) -> None:
        budget = self.config.search.budget
        params = " ".join(f"{k}={v:.4g}" for k, v in rec["params"].items())
        if rec["status"] == "ok":
            outcome = f"objective={rec['objective']:.4f} val_acc={rec['val_acc']:.4f}"
        else:
            outcome = f"{rec['status'].upper()}: {rec['error']}"
        best = opt.best()
        best_txt = (
            f"best={best.value:.4f} ("
            + " ".join(f"{k}={v:.4g}" for k, v in best.params.items())
            + ")"
            if best
            else "best=none yet"
        )
        self.say(
            f"[{rec['index'] + 1:>2}/{budget}] {params}  {outcome}  {best_txt}  "
            f"{rec['wall_s']:.1f}s  ({rec['proposal']})"
        )

    def _prune_checkpoints(self, opt: BayesianOptimizer) -> None:
        # Only at the end: the incumbent (lowest posterior mean) can move back to an
        # earlier trial as the GP learns, so every success keeps its weights until then.
        # Observations are told in journal order: their index is the trial's.
        keep = opt.best_index()
        for path in self.ckpt_dir.glob("trial_*.ckpt"):
            if keep is None or path.name != f"trial_{keep:03d}.ckpt":
                path.unlink(missing_ok=True)

    def run(self) -> dict[str, Any]:
        """Run the study to its budget (continuing a journal) and write the report."""
        started = time.perf_counter()
        records = read_journal(self.journal, repair=self.primary)
        opt = BayesianOptimizer.from_config(self.config, records)
        budget = self.config.search.budget
        if records:
            self.say(f"resuming {self.run_dir}: {len(records)}/{budget} trials done")
            for k in range(2, len(records) + 1):
                if not figure_path(self.run_dir, k).exists():
                    past = BayesianOptimizer.from_config(self.config, records[:k])
                    self.draw(past, k, past.ask())
        self.ckpt_dir.mkdir(exist_ok=True)
        failures = 0
        for r in reversed(records):
            if r["status"] != "failed":
                break
            failures += 1
        next_params = opt.ask()
        kind = opt.last_proposal_kind
        while len(records) < budget:
            if failures >= self.config.search.max_consecutive_failures:
                raise StudyError(
                    f"{failures} trials failed in a row (last: "
                    f"{records[-1]['error']}); stopping the study. Fix the cause "
                    f"and resume with: boresnet bo --resume {self.run_dir}"
                )
            index = len(records)
            seed = self.config.seed + index
            result = run_trial(
                self.config,
                next_params,
                seed=seed,
                log_dir=self.run_dir,
                name="trials",
                version=f"trial_{index:03d}",
                checkpoint=self.ckpt_dir / f"trial_{index:03d}.ckpt",
            )
            rec = self._record(index, next_params, result, seed, kind)
            if self.primary:
                append_record(self.journal, rec)
            records.append(rec)
            opt.tell(next_params, result.objective, result.status)
            failures = failures + 1 if result.status == "failed" else 0
            if self.primary:
                self._log_scalars(opt, rec)
            self._progress(opt, rec)
            next_params = opt.ask()
            kind = opt.last_proposal_kind
            self.draw(opt, len(records), next_params)
        if self.primary:
            self._prune_checkpoints(opt)
        summary = final_report(
            self.config,
            self.run_dir,
            records,
            opt,
            time.perf_counter() - started,
            self.say,
            self.writer if self.primary else None,
            self.primary,
        )
        if self.primary:
            write_summary_figures(self.config, self.run_dir, records, self.writer)
            self.writer.close()
        return summary

    def _log_scalars(self, opt: BayesianOptimizer, rec: dict) -> None:
        step = rec["index"] + 1
        for name, value in rec["params"].items():
            self.writer.add_scalar(f"bo/{name}", value, step)
        if rec["objective"] is not None:
            self.writer.add_scalar("bo/objective", rec["objective"], step)
        best = opt.best()
        if best is not None:
            self.writer.add_scalar("bo/best_objective", best.value, step)


def new_run_dir(config: Config, explicit: str | None) -> Path:
    """Pick the run folder: explicit, inherited from rank 0, or OUT/bo-TIMESTAMP."""
    if explicit:
        return Path(explicit)
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    world = max(int(os.environ.get(v, "1") or 1) for v in ("WORLD_SIZE", "SLURM_NTASKS"))
    if world > 1:
        # Ranks started by SLURM or torchrun do not share our environment: a timestamp
        # would differ between them, so each would write its own study.
        raise StudyError(
            "--run-dir is required when SLURM or torchrun starts the ranks "
            f"(world size {world}): every rank must use the same folder"
        )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.out) / f"bo-{stamp}"


def start_study(config: Config, run_dir: Path, resume: bool) -> dict[str, Any]:
    """Check the folder, lock it, write the config and run the study."""
    if not is_primary():
        return Study(config, run_dir).run()
    ensure_writable(run_dir)
    # Data-parallel ranks re-run this command: they must find rank 0's folder.
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        return _locked_study(config, run_dir, resume)
    finally:
        os.environ.pop(RUN_DIR_ENV, None)


def _locked_study(config: Config, run_dir: Path, resume: bool) -> dict[str, Any]:
    with RunLock(run_dir):
        cfg_path = run_dir / "config.yaml"
        if not resume:
            if (run_dir / JOURNAL).exists():
                raise StudyError(f"{run_dir} already holds a study; use --resume {run_dir}")
            cfg_path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        print(f"study folder: {run_dir}  (TensorBoard: tensorboard --logdir {run_dir})", flush=True)
        return Study(config, run_dir).run()


def cmd_bo(parser, ns, argv: list[str]) -> int:
    """Run ``boresnet bo``: a new study, or ``--resume`` an interrupted one."""
    from boresnet.cli import CliError, config_from

    if ns.resume:
        run_dir = Path(ns.resume)
        config = check_resume(parser, ns, argv, run_dir, load_run_config(run_dir))
    else:
        config = config_from(parser, ns)
        run_dir = new_run_dir(config, ns.run_dir)
    # SIGTERM (a scheduler's preemption, `kill`) stops the study like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = start_study(config, run_dir, resume=bool(ns.resume))
    except KeyboardInterrupt:
        done = len(read_journal(run_dir / JOURNAL)) if (run_dir / JOURNAL).exists() else 0
        print(
            f"\ninterrupted: {done}/{config.search.budget} trials are saved in {run_dir}; "
            f"resume with: boresnet bo --resume {run_dir}",
            file=sys.stderr,
        )
        return 130
    except StudyError as err:
        raise CliError(str(err)) from err
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if summary.get("best_objective") is not None else 1


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
