"""Untrusted files, foreign folders, broken data: nothing runs, nothing is overwritten.

Each test is one case of issue 10, tried the way a careful user (or an attacker) would.
"""

import errno
import json
import math
import os
import shutil
import signal
from pathlib import Path

import lightning
import numpy as np
import pytest
import yaml
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter

from boresnet.atomic import atomic_path
from boresnet.cli.main import main
from boresnet.config.schema import Config, to_dict
from boresnet.study import interrupts
from boresnet.study.journal import read_journal
from boresnet.study.run_folder import RunFolder
from conftest import REPO, bo_args, make_kmnist, one_error, write_idx

pytestmark = pytest.mark.slow  # end to end: make test-fast skips these

CPU = ["--config", str(REPO / "configs" / "cpu.yaml")]


def bo(data, run, budget=2, *extra):
    return bo_args(data, run, budget, *extra)


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- foreign folders
def foreign_folder(tmp_path):
    folder = tmp_path / "mine"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(Config())))
    (folder / "best.ckpt").write_bytes(b"my weights")
    (folder / "summary.json").write_text('{"mine": true}')
    (folder / "checkpoints" / "trial_999.ckpt").write_bytes(b"keep me")
    return folder


def test_a_foreign_folder_is_refused_and_untouched(capsys, tiny_data, tmp_path):
    folder = foreign_folder(tmp_path)
    before = snapshot(folder)
    line = one_error(capsys, bo(tiny_data, folder))
    assert "not empty and is not a boresnet study" in line
    line = one_error(capsys, ["bo", "--resume", str(folder)])
    assert "not a boresnet run folder" in line
    assert snapshot(folder) == before


def test_a_file_is_refused_as_a_run_folder(capsys, tiny_data, tmp_path):
    # (a busy folder: tests/test_study.py::test_second_process_on_a_run_folder_is_refused)
    target = tmp_path / "file"
    target.write_text("x")
    assert "is a file" in one_error(capsys, bo(tiny_data, target))
    assert target.read_text() == "x"


def test_an_existing_study_needs_resume(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    capsys.readouterr()
    before = snapshot(run)
    assert "use --resume" in one_error(capsys, bo(tiny_data, run))
    assert snapshot(run) == before


def test_every_written_file_is_atomic(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    (tmp_path / "fresh.txt").write_text("x")  # what a plain open() gives here
    RunFolder(tmp_path).save(tmp_path / "figure.png", lambda path: path.write_bytes(b"png"))
    mode = (tmp_path / "figure.png").stat().st_mode & 0o777
    assert mode == (tmp_path / "fresh.txt").stat().st_mode & 0o777  # not mkstemp's 0600
    RunFolder(tmp_path).write_summary({"value": math.nan, "list": [math.inf]})
    assert json.loads(target.read_text()) == {"value": None, "list": [None]}  # never bare NaN


def test_trial_checkpoints_are_fsynced_and_renamed_from_beside_their_target(
    tiny_data, tmp_path, monkeypatch
):
    synced, renamed = [], []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src, dst):
        renamed.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert main(bo(tiny_data, tmp_path / "run", 2)) == 0
    checkpoints = tmp_path / "run" / "checkpoints"
    # (Lightning may move its own temporary file onto ours: only the final renames.)
    written = [(s, d) for s, d in renamed if d.parent == checkpoints and d.suffix == ".ckpt"]
    written = [(s, d) for s, d in written if not d.name.startswith(".")]
    # Both trials' checkpoints were written (the clean-up at the end keeps one).
    assert {dst.name for _, dst in written} == {"trial_000.ckpt", "trial_001.ckpt"}
    for src, dst in written:
        assert src.parent == dst.parent, (src, dst)  # beside it: same folder, same disk
        assert str(src) in synced, f"{src} renamed over {dst} without fsync"


# ---------------------------------------------------------------- broken data
def broken(tmp_path, what):
    root = make_kmnist(tmp_path / "data", n_train=300, n_test=60)
    raw = root / "KMNIST" / "raw"
    rng = np.random.default_rng(0)
    if what == "32x32":
        write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 255, (300, 32, 32)))
    elif what == "more labels":
        write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, 310))
    elif what == "fewer labels":
        write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, 290))
    elif what == "label 10":
        write_idx(raw / "train-labels-idx1-ubyte", np.full(300, 10))
    elif what == "zero images":
        write_idx(raw / "train-images-idx3-ubyte", np.zeros((0, 28, 28)))
        write_idx(raw / "train-labels-idx1-ubyte", np.zeros(0))
    elif what == "4-D header":
        write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 255, (300, 28, 28, 1)))
    elif what == "unreadable":
        (raw / "train-images-idx3-ubyte").unlink()
        (raw / "train-images-idx3-ubyte").mkdir()  # root reads any file: a folder cannot be
    elif what == "test label 42":
        write_idx(raw / "t10k-labels-idx1-ubyte", np.full(60, 42))
    return root, raw


CASES = {
    "32x32": ("train-images", "28x28"),
    "more labels": ("train-images", "300 images but"),
    "fewer labels": ("train-images", "300 images but"),
    "label 10": ("train-labels", "labels must be 0-9"),
    "zero images": ("train-images", "no images"),
    "4-D header": ("train-images", "28x28"),
    "unreadable": ("train-images", "read"),
    "test label 42": ("t10k-labels", "labels must be 0-9"),
}


@pytest.mark.parametrize("what", CASES)
def test_broken_data_stops_before_any_trial_naming_the_file(capsys, tmp_path, what):
    data, _ = broken(tmp_path, what)
    run = tmp_path / "run"
    line = one_error(capsys, bo(data, run))
    name, needle = CASES[what]
    assert name in line and needle in line, line
    assert read_journal(run / "trials.jsonl") == []  # never a failed learning rate
    assert not (run / "summary.json").exists()


def test_after_fixing_the_data_the_same_command_runs_every_trial(capsys, tmp_path):
    # The data is checked before the folder is made: nothing to resume, nothing in the way.
    data, raw = broken(tmp_path, "label 10")
    run = tmp_path / "run"
    one_error(capsys, bo(data, run))
    assert not run.exists()
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(300) % 10)
    assert main(bo(data, run)) == 0
    assert [r.status for r in read_journal(run / "trials.jsonl")] == ["ok", "ok"]


# ---------------------------------------------------------------- one line, not a traceback
def test_disk_full_while_saving_a_checkpoint_is_one_line(capsys, tiny_data, tmp_path, monkeypatch):
    def full(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"half a checkpoint")  # the disk fills mid-write
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lightning.Trainer, "save_checkpoint", full)
    line = one_error(capsys, bo(tiny_data, tmp_path / "run"))
    assert "No space left on device" in line
    assert read_journal(tmp_path / "run" / "trials.jsonl") == []  # not a trial failure
    # No partial or empty checkpoint, and no temporary file, is left behind.
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


def test_a_full_disk_when_tensorboard_closes_is_one_line_after_a_complete_report(
    capsys, tiny_data, tmp_path, monkeypatch
):
    # The study's own writer (not the trials' loggers) meets a full disk as it closes.
    flush = RecordWriter.flush
    failing = []

    def full_flush(self):
        if failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        flush(self)

    class StudyWriter(SummaryWriter):
        def close(self):
            failing.append(True)
            super().close()

    monkeypatch.setattr(RecordWriter, "flush", full_flush)
    monkeypatch.setattr("boresnet.study.loop.SummaryWriter", StudyWriter)
    assert main(bo(tiny_data, tmp_path / "run")) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "TensorBoard's event file" in err, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n_trials"] == 2 and summary["test_acc"] is not None


def test_a_data_dir_that_is_a_file_leaves_no_run_folder(capsys, tmp_path):
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("x")
    line = one_error(capsys, bo(not_a_folder, tmp_path / "run"))
    assert str(not_a_folder) in line
    assert not (tmp_path / "run").exists()


def test_a_resumed_config_that_changed_names_the_fields(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    saved["seed"], saved["data"]["split_seed"] = 7, 3
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    capsys.readouterr()
    line = one_error(capsys, ["bo", "--resume", str(run), "--budget", "3"])
    assert "seed (0 then, 7 now)" in line and "data.split_seed (0 then, 3 now)" in line, line
    saved["seed"], saved["data"]["split_seed"] = 0, 0
    saved["model"]["width"] = "four"
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    line = one_error(capsys, ["bo", "--resume", str(run), "--budget", "3"])
    assert "model.width" in line and "'four'" in line, line


def test_a_stop_right_after_the_report_exits_130_and_the_resume_redraws(
    capsys, tiny_data, tmp_path, monkeypatch
):
    # SIGTERM raises KeyboardInterrupt (interrupts.handle_interrupt) wherever the study is: here
    # while the summary figures are drawn, after summary.json was written.
    def sigterm(*args, **kwargs):
        raise KeyboardInterrupt

    run = tmp_path / "run"
    monkeypatch.setattr("boresnet.study.loop.write_summary_figures", sigterm)
    assert main(bo(tiny_data, run)) == 130
    out, err = capsys.readouterr()
    assert "summary.json is complete" in err and f"resume with: boresnet bo --resume {run}" in err
    assert "best: trial" in out
    monkeypatch.undo()
    assert main(["bo", "--resume", str(run)]) == 0
    assert (run / "figures" / "summary.png").is_file()


def test_an_incumbent_that_moves_back_to_a_cleaned_up_trial_is_retrained(
    capsys, tiny_data, tmp_path
):
    # The clean-up kept trial 3's weights; a resume whose incumbent moves back to trial 1
    # (here: its record says it was far better) must still finish its report.
    run = tmp_path / "run"
    assert main(bo(tiny_data, run, 3)) == 0
    summary = json.loads((run / "summary.json").read_text())
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == [f"trial_{summary['best_trial']:03d}.ckpt"]
    moved = next(i for i in range(3) if i != summary["best_trial"])
    lines = (run / "trials.jsonl").read_text().splitlines()
    record = json.loads(lines[moved])
    record.update(status="ok", objective=0.01, val_loss=0.01)
    lines[moved] = json.dumps(record)
    (run / "trials.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["bo", "--resume", str(run), "--budget", "4"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_trial"] == moved and summary["retrained_trial"] == moved
    assert summary["test_acc"] is not None and (run / "best.ckpt").is_file()
    assert "retrained with its parameters and seed" in out
    # ... and every later resume finishes too.
    assert main(["bo", "--resume", str(run), "--budget", "5"]) == 0


def test_empty_config_yaml_is_one_line(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    capsys.readouterr()
    (run / "config.yaml").write_text("")
    assert "config.yaml is empty" in one_error(capsys, ["bo", "--resume", str(run)])
    assert "config.yaml is empty" in one_error(capsys, ["plot", str(run)])


def test_journal_with_wrong_types_is_one_line_naming_line_and_field(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    capsys.readouterr()
    lines = (run / "trials.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["objective"] = "low"
    (run / "trials.jsonl").write_text("\n".join([json.dumps(first), lines[1]]) + "\n")
    line = one_error(capsys, ["bo", "--resume", str(run)])
    assert "line 1" in line and "'objective'" in line


def test_evaluate_on_a_gpu_that_is_not_there_is_one_line(capsys, tiny_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    capsys.readouterr()
    assert "no CUDA GPU" in one_error(capsys, ["evaluate", str(run), "--accelerator", "gpu"])


# ---------------------------------------------------------------- smaller defects
def test_resume_with_a_new_budget_updates_config_and_counts(capsys, tiny_data, tmp_path):
    run = tmp_path / "my run"  # a space: printed commands must be quoted
    assert main(bo(tiny_data, run)) == 0
    capsys.readouterr()
    assert main(["bo", "--resume", str(run), "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load((run / "config.yaml").read_text())["search"]["budget"] == 3
    assert "[ 3/3]" in out and "'" + str(run) + "'" in out  # shell-quoted TensorBoard hint
    assert main(["bo", "--resume", str(run), "--budget", "2"]) == 0  # lowered: nothing to run
    out = capsys.readouterr().out
    assert "3 trials done, budget 2" in out and "/2]" not in out


def test_torn_line_warns_once(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    text = (run / "trials.jsonl").read_text()
    (run / "trials.jsonl").write_text(text + text.splitlines()[0][:30])
    with pytest.warns(UserWarning, match="torn") as caught:
        assert main(["bo", "--resume", str(run)]) == 0
    assert len([w for w in caught if "torn" in str(w.message)]) == 1


def test_study_folder_copied_elsewhere_still_evaluates(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo(tiny_data, run)) == 0
    copy = tmp_path / "copied"
    shutil.copytree(run, copy)
    capsys.readouterr()
    assert main(["evaluate", str(copy), "--data-dir", str(tiny_data)]) == 0


# The swallowed KeyboardInterrupt is the point: pytest reports it as unraisable.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_by_a_finaliser_is_not_lost():
    # Python drops an exception raised in __del__ ("Exception ignored"); a Ctrl-C that
    # lands there once let a study run on to its budget and exit 0.
    class Finalised:
        def __del__(self):
            interrupts.handle_interrupt(signal.SIGINT, None)

    interrupts.forget_interrupts()
    try:
        Finalised()  # collected at once: the KeyboardInterrupt is swallowed
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_interrupted()
    finally:
        interrupts.forget_interrupts()
    interrupts.raise_if_interrupted()  # forgotten: nothing raised
