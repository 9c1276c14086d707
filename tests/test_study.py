"""The whole ``bo`` command: smoke test, resume, interruptions, faults, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boresnet.cli.main import main
from boresnet.study.journal import read_journal
from conftest import REPO, TINY, bo_args, make_kmnist

pytestmark = pytest.mark.slow  # end to end: make test-fast skips these

CFG = ["--config", str(REPO / "configs" / "cpu.yaml")]


def run_main(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def spawn(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "boresnet", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def wait_for_lines(path: Path, n: int, proc, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


def comparable(records):
    keys = ("index", "params", "objective", "val_loss", "val_acc", "status", "seed")
    rows = [r.to_dict() if hasattr(r, "to_dict") else r for r in records]
    return [{k: r[k] for k in keys} for r in rows]


def test_smoke_whole_study(capsys, study_data, tmp_path):
    run = tmp_path / "run"
    code, out, _ = run_main(capsys, *bo_args(study_data, run, 3, "--trainer.progress_bar", "true"))
    assert code == 0, out
    records = read_journal(run / "trials.jsonl")
    assert [r.index for r in records] == [0, 1, 2]
    assert all(r.status == "ok" and r.objective > 0 for r in records)
    assert [r.proposal for r in records][:2] == ["sobol", "sobol"]
    assert records[2].proposal in ("logei", "explore")
    for name in (
        "iteration_02.png",
        "iteration_03.png",
        "summary.png",
        "convergence.png",
        "confusion.png",
    ):
        assert (run / "figures" / name).stat().st_size > 5000, name
    summary = json.loads((run / "summary.json").read_text())
    assert {"best_params", "best_objective", "test_acc", "trials", "wall_s"} <= set(summary)
    # The incumbent is an evaluated trial; its observed value is reported beside the best.
    assert summary["best_objective"] == records[summary["best_trial"]].objective
    assert summary["best_observed_objective"] == min(r.objective for r in records)
    assert summary["incumbent_rule"].startswith("lowest GP posterior mean")
    assert 0.0 <= summary["test_acc"] <= 1.0 and summary["test_n"] > 0
    assert summary["trials"] == [r.to_dict() for r in records]
    assert (run / "best.ckpt").exists() and len(list((run / "checkpoints").iterdir())) == 1
    assert "[ 3/3]" in out and "test_acc=" in out
    # TensorBoard holds one BO figure per iteration (2 and 3) and the per-trial curves.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "study"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Images("bo/iteration")] == [2, 3]
    assert "report/confusion_matrix" in events.Tags()["images"]
    assert len(list((run / "trials").glob("trial_*/events.out.tfevents.*"))) == 3
    # The HParams view: one run per trial, its parameters against its results.
    for k in range(3):
        hp = EventAccumulator(str(run / "study" / "hparams" / f"trial_{k:03d}")).Reload()
        assert {"hparam/objective", "hparam/val_acc"} <= set(hp.Tags()["scalars"])
        assert "_hparams_/session_start_info" in hp.PluginTagToContent("hparams")
    # evaluate and plot work from the folder alone.
    code, out, _ = run_main(capsys, "evaluate", str(run), "--data-dir", str(study_data))
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["test_acc"] == pytest.approx(summary["test_acc"])
    assert result["n"] == summary["test_n"] and result["train_overlap"] == 0
    drawn = {png.name: png.read_bytes() for png in (run / "figures").glob("*.png")}
    assert {"iteration_02.png", "iteration_03.png", "confusion.png"} <= set(drawn)
    for name in drawn:
        (run / "figures" / name).unlink()
    assert run_main(capsys, "plot", str(run))[0] == 0
    # The journal alone redraws the very same figures.
    for name, data in drawn.items():
        assert (run / "figures" / name).read_bytes() == data, name


def test_sigkill_then_resume_equals_uninterrupted(study_data, tmp_path, capsys):
    ref = tmp_path / "ref"
    code, out, err = run_main(capsys, *bo_args(study_data, ref, 4))
    assert code == 0, err
    run = tmp_path / "run"
    proc = spawn(bo_args(study_data, run, 4))
    wait_for_lines(run / "trials.jsonl", 2, proc)
    time.sleep(0.2)  # drawing figure 2 or training trial 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= len(read_journal(run / "trials.jsonl")) < 4
    code, out, _ = run_main(capsys, "bo", "--resume", str(run))
    assert code == 0, out
    records = read_journal(run / "trials.jsonl")
    assert [r.index for r in records] == [0, 1, 2, 3]
    expected = json.loads((ref / "summary.json").read_text())
    got = json.loads((run / "summary.json").read_text())
    assert comparable(got["trials"]) == comparable(expected["trials"])
    for key in ("best_params", "best_objective", "test_acc"):
        assert got[key] == expected[key], key


def test_torn_journal_line_is_rerun(study_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, *bo_args(study_data, run, 3))[0] == 0
    full = read_journal(run / "trials.jsonl")
    text = (run / "trials.jsonl").read_text()
    cut = text.rstrip("\n").rfind("\n") + 40
    (run / "trials.jsonl").write_text(text[:cut])  # a kill during the last write
    with pytest.warns(UserWarning, match="torn"):
        code, _, _ = run_main(capsys, "bo", "--resume", str(run))
    assert code == 0
    # The lost trial runs again with its seed and gives the same result, under a new
    # number: its own (2) was claimed when it started, and stays unused.
    again = read_journal(run / "trials.jsonl")
    assert [r.index for r in again] == [0, 1, 3]
    unnumbered = [{**row, "index": None} for row in comparable(again)]
    assert unnumbered == [{**row, "index": None} for row in comparable(full)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_abandons_trial_and_says_how_to_resume(study_data, tmp_path, sig):
    run = tmp_path / "run"
    proc = spawn(bo_args(study_data, run, 6, "--model.width", "8"))
    wait_for_lines(run / "trials.jsonl", 1, proc)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert f"--resume {run}" in err
    records = read_journal(run / "trials.jsonl")  # intact: no torn line
    assert 1 <= len(records) < 6
    # What the study guarantees: a resume (here with no trial left to run) redraws
    # every figure the interruption skipped.
    budget = max(len(records), 2)  # a budget below n_init (2) is refused
    code = main(["bo", "--resume", str(run), "--budget", str(budget)])
    assert code == 0
    records = read_journal(run / "trials.jsonl")
    assert len(records) == budget
    for k in range(2, budget + 1):
        assert (run / "figures" / f"iteration_{k:02d}.png").stat().st_size > 5000, k


def test_failed_trial_is_recorded_and_study_goes_on(study_data, tmp_path, capsys, monkeypatch):
    from boresnet.training.classifier import ResNetClassifier

    original = ResNetClassifier.training_step
    calls = {"n": 0}

    def flaky(self, batch, batch_idx):
        if self.current_epoch == 0 and batch_idx == 0:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("CUDA out of memory (simulated)")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ResNetClassifier, "training_step", flaky)
    code, out, _ = run_main(capsys, *bo_args(study_data, tmp_path / "run", 3))
    assert code == 0
    records = read_journal(tmp_path / "run" / "trials.jsonl")
    assert [r.status for r in records] == ["ok", "failed", "ok"]
    assert "out of memory" in records[1].error and "FAILED" in out


def test_failures_in_a_row_stop_the_study(study_data, tmp_path, capsys, monkeypatch):
    from boresnet.training.classifier import ResNetClassifier

    def broken(self, batch, batch_idx):
        raise RuntimeError("device lost (simulated)")

    monkeypatch.setattr(ResNetClassifier, "training_step", broken)
    code, _, err = run_main(
        capsys, *bo_args(study_data, tmp_path / "run", 6, "--search.max_consecutive_failures", "2")
    )
    assert code == 2 and "2 trials failed in a row" in err and "device lost" in err
    assert len(read_journal(tmp_path / "run" / "trials.jsonl")) == 2


def test_every_trial_diverging_still_finishes(study_data, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, _ = run_main(
        capsys,
        *bo_args(
            study_data,
            run,
            3,
            "--search.params",
            '[{"name": "lr", "low": 1e9, "high": 1e12}]',
            "--trainer.divergence_check_every",
            "1",
        ),
    )
    assert code == 1
    assert "every trial diverged" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_params"] is None and summary["status_counts"]["diverged"] == 3


def test_second_process_on_a_run_folder_is_refused(study_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, *bo_args(study_data, run, 2))[0] == 0
    hold = (
        "from boresnet.study.lock import RunLock; import sys, time\n"
        "with RunLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(run / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_main(capsys, "bo", "--resume", str(run), "--budget", "3")
        assert code == 2 and "in use by another boresnet process" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, _, _ = run_main(capsys, "bo", "--resume", str(run), "--budget", "3")
    assert code == 0 and len(read_journal(run / "trials.jsonl")) == 3


def test_unwritable_output_is_refused_before_training(study_data, tmp_path, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a trial started although the output folder is unwritable")

    monkeypatch.setattr("boresnet.study.runners.run_trial", no_training)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_main(capsys, *bo_args(study_data, blocker / "run", 3))
    assert code == 2 and "not writable" in err


def test_resume_refusals(study_data, tmp_path, capsys):
    code, _, err = run_main(capsys, "bo", "--resume", str(tmp_path))
    assert code == 2 and "not a boresnet run folder" in err
    run = tmp_path / "run"
    assert run_main(capsys, *bo_args(study_data, run, 2))[0] == 0
    code, _, err = run_main(capsys, "bo", "--resume", str(run), "--optim.momentum", "0.5")
    assert code == 2 and "optim.momentum" in err
    lines = (run / "trials.jsonl").read_text().splitlines()
    other = json.loads(lines[1])
    other["space"][0]["high"] = 1.0
    (run / "trials.jsonl").write_text("\n".join([lines[0], json.dumps(other)]) + "\n")
    code, _, err = run_main(capsys, "bo", "--resume", str(run), "--budget", "3")
    assert code == 2 and "search.params" in err and "line 2" in err
    (run / "trials.jsonl").write_text("\n".join([lines[0], "#garbage", lines[1]]) + "\n")
    code, _, err = run_main(capsys, "bo", "--resume", str(run), "--budget", "3")
    assert code == 2 and "line 2" in err


def test_two_parameter_study(capsys, study_data, tmp_path):
    run = tmp_path / "run"
    params = (
        '[{"name": "lr", "low": 0.01, "high": 3}, '
        '{"name": "momentum", "low": 0.5, "high": 0.95, "scale": "linear"}]'
    )
    code, out, _ = run_main(capsys, *bo_args(study_data, run, 3, "--search.params", params))
    assert code == 0, out
    records = read_journal(run / "trials.jsonl")
    assert all(set(r.params) == {"lr", "momentum"} for r in records)
    assert all(0.5 <= r.params["momentum"] <= 0.95 for r in records)
    assert (run / "figures" / "iteration_03.png").exists()
    # Two parameters: the plane's map beside each iteration figure.
    assert (run / "figures" / "map_02.png").exists() and (run / "figures" / "map_03.png").exists()


def test_externally_launched_ranks_need_a_run_dir(study_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    args = ["bo", *CFG, "--data-dir", str(study_data), *TINY, "--out", str(tmp_path / "o")]
    code, _, err = run_main(capsys, *args)
    assert code == 2 and "--run-dir is required" in err
    assert not (tmp_path / "o").exists()


def test_a_range_too_narrow_for_the_budget_stops_early_with_a_report(capsys, study_data, tmp_path):
    # 0.021 decades hold about three points 0.01 decades apart: the budget of 5 cannot
    # be spent; the study says so in one line and reports what it measured.
    run = tmp_path / "run"
    narrow = "[{name: lr, low: 0.1, high: 0.105}]"
    code, out, err = run_main(capsys, *bo_args(study_data, run, 5, "--search.params", narrow))
    assert code == 0, err
    assert "Traceback" not in err
    lines = [line for line in out.splitlines() if "exhausted" in line]
    assert len(lines) == 1 and "search.min_distance = 0.01" in lines[0], out
    records = read_journal(run / "trials.jsonl")
    assert 2 <= len(records) < 5
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_early"] and summary["n_trials"] == len(records)
    assert summary["best_params"] is not None


def test_resume_refuses_overrides_that_change_results(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert run_main(capsys, *bo_args(tiny_data, run, 2))[0] == 0
    # DDP's global batch (devices, nodes, strategy), the default precision (accelerator).
    for field, value in (
        ("trainer.devices", "2"),
        ("trainer.num_nodes", "2"),
        ("trainer.strategy", "ddp"),
        ("trainer.accelerator", "auto"),
    ):
        code, _, err = run_main(capsys, "bo", "--resume", str(run), f"--{field}", value)
        assert code == 2 and f"field {field} differs" in err, (field, err)
    # The data may move, but only with the same content.
    moved = tmp_path / "moved"
    shutil.copytree(tiny_data, moved)
    code, _, err = run_main(
        capsys, "bo", "--resume", str(run), "--data-dir", str(moved), "--budget", "3"
    )
    assert code == 0, err
    other = make_kmnist(tmp_path / "other", seed=1)
    args = ["bo", "--resume", str(run), "--data-dir", str(other), "--budget", "4"]
    code, _, err = run_main(capsys, *args)
    assert code == 2 and "not the data this study's trials were trained on" in err, err
    assert len(read_journal(run / "trials.jsonl")) == 3


def test_a_multi_fidelity_study_resumes_after_sigkill_as_if_unbroken(study_data, tmp_path, capsys):
    short = ("--search.fidelity", '{"low": 0.5}')  # 0.5 and 1 epoch (TINY's max_epochs)
    ref = tmp_path / "ref"
    code, out, err = run_main(capsys, *bo_args(study_data, ref, 2, *short))
    assert code == 0, err
    assert "epochs=0.5 (0.5 of a full training; 0.5 of 2 spent)" in out, out
    records = read_journal(ref / "trials.jsonl")
    assert records[0].length == 0.5 and records[0].proposal == "sobol"
    assert records[-1].length is None  # the last evaluation is a full one
    assert sum(0.5 if r.length == 0.5 else 1 for r in records) <= 2
    summary = json.loads((ref / "summary.json").read_text())
    assert records[summary["best_trial"]].length is None  # only a full run is reported
    assert (ref / "figures" / f"iteration_{len(records):02d}.png").stat().st_size > 5000
    run = tmp_path / "run"
    proc = spawn(bo_args(study_data, run, 2, *short))
    wait_for_lines(run / "trials.jsonl", 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    code, out, _ = run_main(capsys, "bo", "--resume", str(run))
    assert code == 0, out
    got = read_journal(run / "trials.jsonl")
    assert [r.length for r in got] == [r.length for r in records]
    assert comparable(got) == comparable(records)
    assert json.loads((run / "summary.json").read_text())["best_params"] == summary["best_params"]
