import errno
import fcntl
import json
import os
import subprocess
import sys
import time
import warnings

import pytest

from boresnet.study.journal import JournalError, TrialRecord, append_record, read_journal
from boresnet.study.lock import RunFolderBusy, RunLock


def rec(i):
    return TrialRecord(index=i, params={"lr": 0.1 * (i + 1)}, status="ok", objective=1.0 / (i + 1))


def test_append_and_read(tmp_path):
    path = tmp_path / "trials.jsonl"
    for i in range(3):
        append_record(path, rec(i))
    assert read_journal(path) == [rec(0), rec(1), rec(2)]
    assert len(path.read_text().splitlines()) == 3


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / "trials.jsonl"
    for i in range(2):
        append_record(path, rec(i))
    with open(path, "a") as f:
        f.write(json.dumps(rec(2).to_dict())[:25])  # killed in the middle of the write
    with pytest.warns(UserWarning, match="torn"):
        assert len(read_journal(path, repair=True)) == 2
    append_record(path, rec(2))
    assert read_journal(path) == [rec(0), rec(1), rec(2)]


def test_garbage_in_the_middle_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "trials.jsonl"
    append_record(path, rec(0))
    with open(path, "a") as f:
        f.write("}}garbage{{\n")
    append_record(path, rec(1))
    with pytest.raises(JournalError, match="line 2"):
        read_journal(path)


def test_nan_is_never_written(tmp_path):
    with pytest.raises(ValueError):
        bad = rec(0)
        bad.objective = float("nan")
        append_record(tmp_path / "j.jsonl", bad)


HOLD = (
    "from boresnet.study.lock import RunLock; import sys, time\n"
    "with RunLock(sys.argv[1] + '/.lock'):\n    print('held', flush=True); time.sleep(60)\n"
)


def test_lock_refuses_second_owner_and_is_released_on_sigkill(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match="in use"):
            with RunLock(tmp_path / ".lock"):
                pass
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with RunLock(tmp_path / ".lock"):
        pass


@pytest.mark.filterwarnings("ignore:flock not supported")  # filelock's own notice
def test_a_lock_that_is_not_the_kernels_is_detected(tmp_path, monkeypatch):
    # On a file system without flock (some network file systems) filelock falls back to
    # a marker file that survives a SIGKILL: the study says so instead of trusting it.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a local file system: the kernel's lock, silently
        with RunLock(tmp_path / "local.lock"):
            pass

    def no_flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.warns(UserWarning, match="no kernel file locks"):
        with RunLock(tmp_path / "nfs.lock"):
            pass


GOOD = rec(1).to_dict()
MALFORMED = {
    "not an object": ([1, 2], "not a JSON object"),
    "an unknown field": ({**GOOD, "command": "rm -rf"}, "unknown field"),
    "no status": ({k: v for k, v in GOOD.items() if k != "status"}, "'status'"),
    "an index that is a bool": ({**GOOD, "index": True}, "'index'"),
    "a negative index": ({**GOOD, "index": -1}, "'index'"),
    "an unknown status": ({**GOOD, "status": "great"}, "'status'"),
    "a string objective": ({**GOOD, "objective": "0.1"}, "'objective'"),
    "ok without an objective": ({**GOOD, "objective": None}, "'objective'"),
    "a length of zero": ({**GOOD, "length": 0}, "'length'"),
    "a later trial pending": ({**GOOD, "pending": [5]}, "'pending'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_record_is_refused_naming_its_line_and_field(tmp_path, case):
    data, expected = MALFORMED[case]
    path = tmp_path / "trials.jsonl"
    append_record(path, rec(0))
    with open(path, "a") as f:
        f.write(json.dumps(data) + "\n")
    with pytest.raises(JournalError, match="line 2") as err:
        read_journal(path)
    assert expected in str(err.value)


def test_a_trial_journalled_twice_is_refused(tmp_path):
    path = tmp_path / "trials.jsonl"
    for record in (rec(0), rec(1), rec(0)):
        append_record(path, record)
    with pytest.raises(JournalError, match="record 3 repeats trial index 0"):
        read_journal(path)


def test_a_journal_that_is_a_link_or_no_regular_file_is_refused(tmp_path):
    outside = tmp_path / "outside.jsonl"
    append_record(outside, rec(0))
    (tmp_path / "linked.jsonl").symlink_to(outside)
    with pytest.raises(JournalError, match="symbolic link"):
        read_journal(tmp_path / "linked.jsonl")
    with pytest.raises(JournalError, match="not a regular file"):
        read_journal(tmp_path)
    os.mkfifo(tmp_path / "fifo.jsonl")  # no writer: a blocking open would never return
    with pytest.raises(JournalError, match="not a regular file"):
        read_journal(tmp_path / "fifo.jsonl")
