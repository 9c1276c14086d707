import json

import pytest

from boresnet.cli.main import main

CFG = ["--config", "configs/cpu.yaml"]


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(REPO)


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def train_tiny(capsys, data, out, lr, *extra):
    """``boresnet train`` of a 4-wide model on the fake data, quietly."""
    return run(
        capsys,
        "train",
        *CFG,
        "--lr",
        lr,
        "--data-dir",
        str(data),
        "--model.width",
        "4",
        "--data.val_size",
        "50",
        "--trainer.progress_bar",
        "false",
        "--out",
        str(out),
        *extra,
    )


def test_train_prints_json_last_line(capsys, tiny_data, tmp_path):
    code, out, _ = train_tiny(capsys, tiny_data, tmp_path / "logs", "0.2")
    assert code == 0
    record = json.loads(out.strip().splitlines()[-1])
    assert {"status", "objective", "val_loss", "val_acc", "epochs", "wall_s"} <= set(record)
    assert record["status"] == "ok" and record["epochs"] == 2
    assert (tmp_path / "logs" / "train").is_dir()  # TensorBoard logs


def test_train_diverged_exits_zero_with_explanation(capsys, tiny_data, tmp_path):
    code, out, err = train_tiny(
        capsys, tiny_data, tmp_path, "1e6", "--trainer.divergence_check_every", "1"
    )
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["status"] == "diverged"
    assert "diverged" in err and "learning rate" in err


def test_missing_dataset_is_one_clear_error(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "train",
        *CFG,
        "--lr",
        "0.1",
        "--data-dir",
        str(tmp_path / "x"),
        "--out",
        str(tmp_path / "logs"),
    )
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("boresnet: error: KMNIST not found") and "KMNIST/raw" in line


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--search.bogus", "1"], "unknown field 'search.bogus'; allowed in search: search.params"),
        (["--bogus", "1"], "allowed in the top level: data, model"),
        (["--search.budget", "ten"], "search.budget"),
        (["--search.budget", "0"], "search.budget"),
        (["--search.budget", "-3"], "search.budget"),
        (["--search.params", '[{"name": "lr", "low": 1.0, "high": 0.01}]'], "low must be < high"),
        (["--search.params", '[{"name": "lr", "low": 0.0, "high": 1.0}]'], "low > 0"),
        (["--search.params", '[{"name": "lr", "low": 0.1, "high": 1, "scale": "cubic"}]'], "scale"),
        (["--search.params", '[{"name": "dropout", "low": 0.1, "high": 0.5}]'], "allowed: lr"),
        (["--search.n_init", "12"], "larger than the budget"),
        (["--search.acquisition", "ucb"], "allowed: logei, ei"),
        (["--trainer.accelerator", "quantum"], "allowed: auto, cpu"),
        (["--data.train_subset", "0"], "data.train_subset"),
        # Searched bounds outside the field's own range would fail at trial 1 or 2.
        (
            [
                "--search.params",
                '[{"name": "momentum", "low": 0.5, "high": 1.5, "scale": "linear"}]',
            ],
            "search.params[momentum].high: 1.5 is outside",
        ),
        (
            [
                "--search.params",
                '[{"name": "weight_decay", "low": -1, "high": 1, "scale": "linear"}]',
            ],
            "search.params[weight_decay].low",
        ),
        # Trial i trains with seed + i: the last one must still be a valid seed.
        (["--seed", str(2**32 - 3)], "seed: must be in [0, 4294967286)"),
        (["--seed", "-1"], "seed"),
        (["--search.budget", "1000000000"], "search.budget: must be in [1, 10000]"),
        (["--trainer.devices", "0"], "trainer.devices"),
        (["--trainer.devices", "99", "--trainer.accelerator", "cpu"], "99 CPU processes"),
        (["--model.width", "1000000"], "model.width: must be in [1, 1024]"),
        (["--search.gap_radius", "1.5"], "search.gap_radius: must be in (0, 1) or null"),
        (["--search.params", "[]"], "search.params: needs at least one parameter"),
        (["--trainer.collective_timeout_s", "0"], "trainer.collective_timeout_s"),
    ],
)
def test_bad_config_is_one_line_error_and_writes_nothing(capsys, tmp_path, args, needle):
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "bo", *CFG, "--out", str(out_dir), *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("boresnet: error:"), err
    assert needle in lines[0]
    assert "Traceback" not in err
    assert not out_dir.exists()


def test_unknown_field_in_yaml(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: 0.1\n  learning_rate: 0.2\n")
    code, _, err = run(capsys, "train", "--config", str(bad))
    assert code == 2 and "unknown field 'optim.learning_rate'" in err and "optim.lr" in err


@pytest.mark.slow
def test_real_command_prints_exactly_one_error_line(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "boresnet",
            "bo",
            *CFG,
            "--search.budget",
            "0",
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "boresnet: error: search.budget: must be in [1, 10000], got 0"
    ]
    assert proc.stdout == "" and not (tmp_path / "o").exists()


def test_a_type_error_in_a_config_file_names_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  budget: ten\n")
    code, _, err = run(capsys, "bo", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2 and "search.budget" in err and str(bad) in err
    assert len(err.strip().splitlines()) == 1
