"""Data parallelism through Lightning's own DDP strategy, on two CPU processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boresnet.study.journal import read_journal
from conftest import ONE_AT_A_TIME, REPO, TINY

# A line that torch's C++ logging writes to stderr itself ("[rank0]:[E1202 13:51:32...]
# ProcessGroupGloo.cpp:68] ... failed to pass monitoredBarrier"): whether rank 0 was in
# a barrier when rank 1 died is timing, and its text is repeated in boresnet's own line.
TORCH_CPP_LOG = re.compile(r"^\[rank\d+\]:\[[IWEF]\d{4} ")

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]  # end to end: make test-fast skips these


def test_ddp_study_writes_one_journal(study_data, tmp_path):
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "boresnet",
        "bo",
        "--config",
        str(REPO / "configs" / "cpu.yaml"),
        "--data-dir",
        str(study_data),
        *TINY,
        "--budget",
        "2",
        "--out",
        str(out),
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    ]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list(out.iterdir())
    assert len(runs) == 1, runs  # rank 1 found rank 0's folder instead of making its own
    journal = runs[0] / "trials.jsonl"
    assert len(journal.read_text().splitlines()) == 2
    assert [r.index for r in read_journal(journal)] == [0, 1]
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["n_trials"] == 2 and summary["test_n"] > 0
    assert proc.stdout.count("[ 1/2]") == 1  # progress printed by rank 0 only


def test_uneven_device_shards_do_not_hang(study_data, tmp_path):
    """1,025 images at batch 512 on 2 ranks: unpadded shards issue mismatched collectives."""
    args = [
        sys.executable,
        "-m",
        "boresnet",
        "train",
        "--config",
        str(REPO / "configs" / "cpu.yaml"),
        "--data-dir",
        str(study_data),
        *TINY,
        "--lr",
        "0.1",
        "--out",
        str(tmp_path / "out"),
        "--data.loader",
        "device",
        "--data.train_subset",
        "1025",
        "--data.batch_size",
        "512",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    ]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok", result


def test_a_ddp_study_never_hangs_in_its_report(study_data, tmp_path):
    """Every rank must agree whether to retrain the incumbent or test its checkpoint."""
    for attempt in range(3):
        run = tmp_path / f"run{attempt}"
        args = [
            sys.executable, "-m", "boresnet", "bo",
            "--config", str(REPO / "configs" / "cpu.yaml"), "--data-dir", str(study_data),
            *TINY, "--budget", "1", "--search.n_init", "1", "--run-dir", str(run),
            "--data.train_subset", "1025", "--data.batch_size", "512",
            "--data.loader", "device", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        ]  # fmt: skip
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["test_n"] > 0 and summary["retrained_trial"] is None


NAN_ON_RANK_1 = """
import json, os, sys
from pathlib import Path
import torch
from boresnet.config.schema import Config, DataConfig, ModelConfig, TrainerConfig
from boresnet.training.classifier import ResNetClassifier
from boresnet.training.distributed import close_process_group
from boresnet.training.trial import run_trial


original = ResNetClassifier._loss
training_losses = []

def nan_on_rank_1(self, logits, y, smoothing=0.0):
    loss = original(self, logits, y, smoothing)
    if self.training:
        training_losses.append(1)
        if self.global_rank == 1 and len(training_losses) >= 3:  # from step 2 on
            return loss * float("nan")  # only this rank sees the divergence
    return loss

ResNetClassifier._loss = nan_on_rank_1
config = Config(
    data=DataConfig(data_dir=sys.argv[1], train_subset=512, val_size=64, batch_size=32),
    model=ModelConfig(width=4),
    trainer=TrainerConfig(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2,
                          progress_bar=False, divergence_check_every=1),
)
result = run_trial(config, {"lr": 0.1})
# One file per rank: both ranks print to the same stdout, and lines can interleave.
rank = int(os.environ.get("LOCAL_RANK", "0"))
Path(sys.argv[2], f"rank_{rank}.json").write_text(json.dumps(result.to_dict()))
close_process_group()  # as the CLI does: gloo torn down at exit can abort the process
"""


def test_nan_on_one_rank_stops_every_rank(study_data, tmp_path):
    script = tmp_path / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1)
    proc = subprocess.run(
        [sys.executable, str(script), str(study_data), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert all(r["status"] == "diverged" for r in results), results
    # Both ranks stopped at the same step: rank 1 saw the NaN, rank 0 was told.
    assert "nan at epoch 0, step 2" in results[1]["error"]
    assert "another rank at epoch 0, step 2" in results[0]["error"]


def children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Lightning's launcher starts rank 1 as a child)."""
    kids = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def test_a_dead_rank_is_a_machine_fault_not_a_failed_trial(study_data, tmp_path):
    # Rank 1 SIGKILLed during a trial: the study stops with one line, the trial is not
    # journalled as a failed learning rate, and --resume runs it.
    run = tmp_path / "run"
    args = [
        sys.executable, "-m", "boresnet", "bo", "--config", str(REPO / "configs" / "cpu.yaml"),
        "--data-dir", str(study_data), *TINY, "--data.train_subset", "2048",
        "--trainer.max_epochs", "2", "--budget", "2", "--run-dir", str(run),
        "--trainer.devices", "2", "--trainer.strategy", "ddp",
    ]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    # Training has begun once the trial's logger wrote its event file (its folder is
    # claimed before the trial starts).
    while not (children(proc.pid) and any(run.glob("trials/*/events.out.tfevents.*"))) and (
        time.time() < deadline
    ):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # training
    killed = time.time()
    for pid in children(proc.pid):
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert time.time() - killed < 60
    lines = [line for line in err.strip().splitlines() if not TORCH_CPP_LOG.match(line)]
    assert proc.returncode == 2 and len(lines) == 1, err[-3000:]
    assert "machine fault, not the learning rate" in lines[0] and "--resume" in lines[0]
    # The kill caught the first trial, or on a fast machine the second: only the trials
    # that finished are journalled, and none as failed.
    before = read_journal(run / "trials.jsonl")
    assert len(before) < 2 and all(r.status != "failed" for r in before)
    resumed = subprocess.run(
        [sys.executable, "-m", "boresnet", "bo", "--resume", str(run)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = read_journal(run / "trials.jsonl")
    assert len(records) == 2 and all(r.status != "failed" for r in records)
    # The killed trial's number stays unused: its rerun takes the next one.
    killed_index = len(before)
    assert [r.index for r in records] == [*range(killed_index), *range(killed_index + 1, 3)]
