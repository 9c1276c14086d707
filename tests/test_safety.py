"""Opening a run folder never executes code: checkpoints load with weights_only=True."""

from pathlib import Path

import pytest
import torch
import yaml

from boresnet.cli.main import main
from boresnet.config.schema import Config, to_dict
from boresnet.study.journal import read_journal
from conftest import REPO, TINY


class _Bomb:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"state_dict": {}, "payload": _Bomb(marker)}, path)


@pytest.mark.parametrize("folder", ["run", "a_folder_name_of_forty_characters_long__/" * 4 + "run"])
def test_evaluate_refuses_a_planted_pickle(capsys, tmp_path, folder):
    run = tmp_path / folder  # deep: a line too long loses its middle, never name and reason
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(Config())))
    (run / "trials.jsonl").write_text("")
    marker = tmp_path / "pwned"
    _plant(run / "best.ckpt", marker)
    code = main(["evaluate", str(run), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not marker.exists()
    assert len(err) == 1 and "best.ckpt" in err[0] and "weights only" in err[0]


def test_evaluate_truncated_checkpoint_is_one_line(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(Config())))
    (run / "trials.jsonl").write_text("")
    (run / "best.ckpt").write_bytes(b"PK\x03\x04 truncated")
    code = main(["evaluate", str(run), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "best.ckpt" in err[0]


@pytest.mark.slow
def test_resume_of_finished_study_refuses_planted_trial_checkpoint(capsys, study_data, tmp_path):
    run = tmp_path / "run"
    args = ["bo", "--config", str(REPO / "configs" / "cpu.yaml"), "--data-dir", str(study_data)]
    assert main([*args, *TINY, "--budget", "2", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    kept = list((run / "checkpoints").glob("trial_*.ckpt"))
    assert len(kept) == 1
    marker = tmp_path / "pwned"
    _plant(kept[0], marker)
    code = main(["bo", "--resume", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not marker.exists()
    assert kept[0].name in err[-1] and "weights only" in err[-1]
    assert len(read_journal(run / "trials.jsonl")) == 2
