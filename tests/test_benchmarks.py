"""Smoke tests: each benchmark script runs end to end on a tiny setting."""

import json
import subprocess
import sys

import numpy as np

from conftest import REPO


def fake_table(path, points=21, seeds=3):
    rng = np.random.default_rng(0)
    lines = [
        "# fake table for the smoke test",
        "log10_lr,lr,seed,status,objective,val_loss,val_acc,wall_s",
    ]
    for seed in range(seeds):
        for x in np.linspace(-3, 1, points):
            if x > 0.8:
                lines.append(f"{x:.4f},{10**x},{seed},diverged,,,,1.0")
                continue
            y = 0.1 + 0.3 * (x + 0.5) ** 2 + 0.02 * rng.standard_normal()
            lines.append(f"{x:.4f},{10**x},{seed},ok,{y},{y},0.9,1.0")
    path.write_text("\n".join(lines) + "\n")


def test_bo_regret_runs_and_writes_results(tmp_path):
    fake_table(tmp_path / "table.csv")
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bo_regret.py",
            "--table",
            str(tmp_path / "table.csv"),
            "--reps",
            "2",
            "--budget",
            "4",
            "--prototype-steps",
            "10",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "bo_regret.json").read_text())
    assert set(stats) == {
        "boresnet",
        "random",
        "grid",
        "tpe",
        "tpe_short",
        "gp",
        "gp_short",
        "prototype",
    }
    for s in stats.values():
        assert {"mean", "median", "p90", "within_0.01", "overhead_s"} <= set(s)
        assert s["mean"] >= 0
    assert (tmp_path / "bo_regret.md").read_text().count("\n| ") == 9
    assert all(0 <= s["edge_evals"] <= 4 for s in stats.values())
    assert (tmp_path / "bo_regret.png").stat().st_size > 5000


def test_throughput_quick(tmp_path, study_data):
    out = tmp_path / "throughput.json"
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/throughput.py",
            "--quick",
            "--data-dir",
            str(study_data),
            "--out",
            str(out),
            "--train-subset",
            "128",
            "--width",
            "4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in ("lightning_img_s", "plain_img_s", "ratio", "bo_overhead_s_1d", "bo_overhead_s_3d"):
        assert result[key] > 0
