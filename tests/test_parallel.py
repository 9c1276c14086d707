"""Several trials at once on Ray: proposals with pending points, the journal, the faults."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import ray

from boresnet.cli.main import main
from boresnet.study.journal import read_journal
from boresnet.study.resume import load_run_config
from boresnet.study.run_folder import RunFolder
from boresnet.training.trial import run_trial
from boresnet.tuner import BayesianOptimizer
from conftest import ONE_AT_A_TIME, REPO, bo_args, one_error

pytestmark = ONE_AT_A_TIME  # Ray: one test at a time

# The processes a local Ray leaves behind if it is not stopped.
RAY_PROCESSES = ("raylet", "gcs_server", "ray::", "ray_process_reaper", "dashboard")


def ray_processes() -> list[str]:
    """Command lines of this machine's Ray processes."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:] if any(n in line for n in RAY_PROCESSES)]


def new_ray_processes(before: list[str]) -> list[str]:
    """This machine's Ray processes that were not running at ``before``."""
    pids = {line.split()[0] for line in before}
    return [line for line in ray_processes() if line.split()[0] not in pids]


def ray_gone(before: list[str], timeout: float = 60) -> None:
    """Wait until every Ray process started since ``before`` has exited, or fail naming them.

    By PID, not by count: Ray's agents from an earlier test may still be on their way out.
    They go within seconds; the timeout leaves room for make test's other worker's load.
    """
    start = time.time()
    while left := new_ray_processes(before):
        if time.time() - start > timeout:
            raise AssertionError(f"Ray's processes still running after {timeout:.0f} s: {left}")
        time.sleep(0.2)


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` until true, or fail naming ``what``."""
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def parallel_args(data, run_dir, budget: int, parallel: int = 2) -> list[str]:
    """A tiny CPU study with ``parallel`` trials in flight, one core each."""
    return bo_args(
        data, run_dir, budget, "--search.parallel", str(parallel), "--engine.cpus_per_trial", "1"
    )


def test_bad_engine_values_are_one_line_each(capsys, tiny_data, tmp_path):
    cases = {
        "search.parallel": ["--search.parallel", "0"],
        "engine.cpus_per_trial": ["--search.parallel", "2", "--engine.cpus_per_trial", "-1"],
        "engine.gpus_per_trial": ["--search.parallel", "2", "--engine.gpus_per_trial", "1.5"],
    }
    for field, extra in cases.items():
        line = one_error(capsys, bo_args(tiny_data, tmp_path / field, 3, *extra))
        assert field in line, line
    ddp = ["--search.parallel", "2", "--trainer.devices", "2"]
    line = one_error(capsys, bo_args(tiny_data, tmp_path / "ddp", 3, *ddp))
    assert "search.parallel" in line and "data-parallel" in line


def test_an_address_that_does_not_answer_is_one_line_in_seconds(capsys, tiny_data, tmp_path):
    extra = ["--search.parallel", "2", "--engine.address", "127.0.0.1:9"]
    started = time.time()
    line = one_error(capsys, bo_args(tiny_data, tmp_path / "run", 3, *extra))
    assert "engine.address" in line and "127.0.0.1:9" in line
    assert time.time() - started < 30


@pytest.mark.slow
def test_more_cpus_than_the_machine_has_is_one_line(capsys, tiny_data, tmp_path):
    cpus = str(4 * (os.cpu_count() or 1))
    extra = ["--search.parallel", "2", "--engine.cpus_per_trial", cpus]
    line = one_error(capsys, bo_args(tiny_data, tmp_path / "run", 3, *extra))
    assert "engine.cpus_per_trial" in line
    assert not ray.is_initialized()


@pytest.mark.slow
def test_two_in_flight_each_proposal_told_the_running_point(
    capsys, study_data, tmp_path, monkeypatch
):
    asks: list[tuple[dict[str, float], list[dict[str, float]]]] = []
    ask = BayesianOptimizer.ask

    def spy(self, pending=()):
        proposal = ask(self, pending)
        asks.append((proposal, [dict(p.params) for p in pending]))
        return proposal

    monkeypatch.setattr(BayesianOptimizer, "ask", spy)
    before = ray_processes()
    run = tmp_path / "run"
    assert main(parallel_args(study_data, run, budget=6)) == 0
    out = capsys.readouterr().out
    assert "up to 2 trials at once on a local Ray" in out
    records = read_journal(run / "trials.jsonl")
    assert sorted(r.index for r in records) == list(range(6))
    by_index = {r.index: r for r in records}
    # Every proposal after the first was made while another trial ran, and the
    # optimiser was given that trial's point as pending.
    assert [len(r.pending) for r in sorted(records, key=lambda r: r.index)] == [0] + [1] * 5
    for r in records:
        told = [pending for proposal, pending in asks if proposal == r.params]
        # (the figures ask too, and the last one after the budget with nothing running)
        assert [by_index[i].params for i in r.pending] in told, (r.index, told)
    # No two trials closer than min_distance (0.01 decades).
    lrs = sorted(math.log10(r.params["lr"]) for r in records)
    assert min(b - a for a, b in zip(lrs, lrs[1:], strict=False)) > 0.01
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_trials"] == 6 and summary["test_acc"] is not None
    assert (run / "figures" / "iteration_05.png").exists()
    # A Ray task trains with its one CPU's thread; the journal says so, and the same
    # trial trained here with as many threads gives the same validation loss.
    assert {r.threads for r in records} == {1}
    config = load_run_config(RunFolder(run))
    again = run_trial(config, records[0].params, seed=records[0].seed, threads=records[0].threads)
    assert again.val_loss == records[0].val_loss
    assert not ray.is_initialized()
    ray_gone(before)


@pytest.mark.slow
def test_parallel_one_runs_without_ray_and_writes_the_same_journal(capsys, study_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo_args(study_data, run, 3)) == 0
    assert not ray.is_initialized()
    lines = [json.loads(x) for x in (run / "trials.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == [0, 1, 2]
    assert all("pending" not in x for x in lines)  # the lines a sequential study wrote


def start(args: list[str]) -> subprocess.Popen:
    """``boresnet`` in a subprocess of its own process group, output to pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "boresnet", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """The subprocess's output up to the first line that contains ``text``."""
    seen: list[str] = []
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no line with {text!r} in:\n{''.join(seen)}")


def trial_workers() -> list[int]:
    """PIDs of Ray workers running a trial."""
    return [int(line.split()[0]) for line in ray_processes() if "ray::run_trial" in line]


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_a_killed_driver_resumes(capsys, study_data, tmp_path):
    """One study, two faults: a worker SIGKILLed mid-trial, then the driver itself."""
    run = tmp_path / "run"
    proc = start(parallel_args(study_data, run, budget=5))
    read_until(proc, "[started] trial 2", 120)
    wait_for(lambda: trial_workers(), 30, "a trial's worker")
    os.kill(trial_workers()[0], signal.SIGKILL)  # Ray runs that trial again
    seen = read_until(proc, "[started] trial 4", 180)  # two done (one retried), two in flight
    assert "\x1b[" not in seen  # Ray's warning about the dead worker, without colour codes
    records = read_journal(run / "trials.jsonl")
    assert all(r.status != "failed" for r in records), [r.error for r in records]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # The in-flight trials are lost with the driver, and its Ray's core and workers go
    # with it (Ray's agents follow on their own, within about a minute).
    core = ("raylet", "gcs_server", "ray::run_trial", "ray::IDLE")
    wait_for(
        lambda: not any(n in line for line in ray_processes() for n in core),
        30,
        "the killed driver's Ray to exit",
    )
    kept = read_journal(run / "trials.jsonl")
    assert 2 <= len(kept) <= 3
    assert main(["bo", "--resume", str(run)]) == 0
    records = read_journal(run / "trials.jsonl")
    assert records[: len(kept)] == kept  # no record lost
    assert len(records) == 5 and len({r.index for r in records}) == 5  # no duplicates
    assert "resuming" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_with_trials_in_flight_exits_130_and_leaves_no_ray(study_data, tmp_path):
    before = ray_processes()
    run = tmp_path / "run"
    proc = start(parallel_args(study_data, run, budget=6))
    read_until(proc, "[started] trial 2", 120)
    wait_for(lambda: len(trial_workers()) >= 1, 30, "a trial's worker")
    for _ in range(3):  # an impatient user: the later ones land in the shutdown
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "resume with: boresnet bo --resume" in out and "Traceback" not in out
    ray_gone(before)


@pytest.mark.slow
def test_sigterm_with_trials_in_flight_exits_130_and_the_resume_completes(study_data, tmp_path):
    run = tmp_path / "run"
    proc = start(parallel_args(study_data, run, budget=3))
    read_until(proc, "[ 1/3]", 180)  # a trial has finished: Ray is up, more are running
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "resume with: boresnet bo --resume" in out
    # (the rest one at a time: parallel may change on resume, and Ray need not start again)
    done = subprocess.run(
        [sys.executable, "-m", "boresnet", "bo", "--resume", str(run), "--search.parallel", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    records = read_journal(run / "trials.jsonl")
    assert len(records) == 3 and len({r.index for r in records}) == 3


@pytest.mark.slow
def test_every_trial_diverging_in_parallel_still_reports_plots_and_resumes(
    capsys, tiny_data, tmp_path
):
    run = tmp_path / "run"
    far = ["--search.params", "[{name: lr, low: 50, high: 100}]"]
    assert main(parallel_args(tiny_data, run, 3) + far) == 1  # no trial gave a result
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_params"] is None
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0
    assert main(["bo", "--resume", str(run)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "SearchExhausted" not in err


@pytest.mark.slow
def test_two_in_flight_with_a_fidelity_tell_pending_lengths(capsys, study_data, tmp_path):
    run = tmp_path / "run"
    args = parallel_args(study_data, run, budget=2) + ["--search.fidelity", '{"low": 0.5}']
    assert main(args) == 0
    records = read_journal(run / "trials.jsonl")
    assert {r.length for r in records} >= {0.5, None}
    assert any(r.pending for r in records)  # proposed while another ran, its length told
    spent = sum({0.5: 0.5, None: 1.0}[r.length] for r in records)  # TINY: 1 epoch in full
    assert spent <= 2 + 1e-9
    summary = json.loads((run / "summary.json").read_text())
    assert records[[r.index for r in records].index(summary["best_trial"])].length is None
