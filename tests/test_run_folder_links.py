"""A run folder cannot be turned against its owner: no link is followed, no bad line read.

Each case was tried as an adversarial user would (issue 21): a finished study's folder
with one entry replaced by a symbolic link to something outside, or one journal line
edited. The study, ``plot`` and the clean-up refuse in one line and the outside targets
stay byte-identical.
"""

import json
import os
import shutil

import pytest

from boresnet.cli.main import main
from boresnet.study.journal import read_journal
from conftest import bo_args, make_kmnist, one_error

pytestmark = pytest.mark.slow  # end to end: make test-fast skips these


def snapshot(path):
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return path.read_bytes()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-trial study, copied afresh by each test."""
    root = tmp_path_factory.mktemp("study")
    data = make_kmnist(root / "data")
    assert main(bo_args(data, root / "run", 2)) == 0
    return root


def copy_of(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run, symlinks=True)
    return run, finished / "data"


@pytest.mark.parametrize("entry", ["trials.jsonl", "checkpoints", "figures", "best.ckpt"])
def test_a_linked_entry_is_refused_and_its_target_untouched(capsys, finished, tmp_path, entry):
    run, data = copy_of(finished, tmp_path)
    outside = tmp_path / "outside"
    if entry in ("checkpoints", "figures"):
        outside.mkdir()
        (outside / "trial_007.ckpt").write_bytes(b"the user's own weights")
        (outside / "iteration_02.png").write_bytes(b"the user's own figure")
        for old in (run / entry).iterdir():
            old.unlink()
        (run / entry).rmdir()
    else:
        outside.write_bytes(b'{"a line of the user\'s own"}\n' if entry != "best.ckpt" else b"w")
        (run / entry).unlink()
    os.symlink(outside, run / entry)
    before = snapshot(outside)
    capsys.readouterr()
    line = one_error(capsys, ["bo", "--resume", str(run), "--budget", "3"])
    assert entry in line and "symbolic link" in line, line
    line = one_error(capsys, ["plot", str(run)])
    assert entry in line and "symbolic link" in line, line
    assert snapshot(outside) == before


BAD_LINES = {
    "lr 0": {"lr": 0.0},
    "lr -1": {"lr": -1.0},
    "no params": {},
    "another parameter": {"momentum": 0.5},
    "lr 100, outside the bounds": {"lr": 100.0},
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
@pytest.mark.parametrize("where", ["middle", "complete last"])
def test_a_bad_record_is_refused_naming_its_line_and_nothing_is_deleted(
    capsys, finished, tmp_path, case, where
):
    run, _ = copy_of(finished, tmp_path)
    lines = (run / "trials.jsonl").read_text().splitlines()
    number = 1 if where == "middle" else len(lines)
    record = json.loads(lines[number - 1])
    record["params"] = BAD_LINES[case]
    lines[number - 1] = json.dumps(record)
    (run / "trials.jsonl").write_text("\n".join(lines) + "\n")
    before = (run / "trials.jsonl").read_bytes()
    capsys.readouterr()
    for args in (["bo", "--resume", str(run), "--budget", "3"], ["plot", str(run)]):
        line = one_error(capsys, args)
        assert f"line {number}" in line and "params" in line, line
    assert (run / "trials.jsonl").read_bytes() == before


def test_only_a_last_line_without_its_newline_is_torn(finished, tmp_path):
    run, _ = copy_of(finished, tmp_path)
    journal = run / "trials.jsonl"
    text = journal.read_text()
    journal.write_text(text + text.splitlines()[0])  # complete JSON, but no newline
    with pytest.warns(UserWarning, match="torn last line 3"):
        assert len(read_journal(journal, repair=True)) == 2
    assert journal.read_text() == text
