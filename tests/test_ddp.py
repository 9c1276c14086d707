"""Data parallelism through Lightning's own DDP strategy, on two CPU processes."""

import json
import subprocess
import sys

from boresnet.journal import read_journal
from conftest import REPO, TINY


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
    assert [r["index"] for r in read_journal(journal)] == [0, 1]
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["n_trials"] == 2 and summary["test_n"] > 0
    assert proc.stdout.count("[ 1/2]") == 1  # progress printed by rank 0 only
