"""No hang, no lost signal, no traceback: engine input, Ray's errors and signals, trial numbers."""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import threading
import time

import pytest
import ray
import yaml
from ray.exceptions import LocalRayletDiedError, RayTaskError

from boresnet.cli.main import MAX_LINE, main, one_line
from boresnet.config.schema import Config, EngineConfig, SearchConfig
from boresnet.study.interrupts import handle_interrupt
from boresnet.study.journal import TrialRecord
from boresnet.study.loop import START_INDEX_ENV, Study
from boresnet.study.run_folder import RunFolder
from boresnet.study.runners import RayRunner, Trial, signal_handlers_kept
from boresnet.training.faults import MachineFault
from conftest import ONE_AT_A_TIME, bo_args, one_error

pytestmark = ONE_AT_A_TIME  # Ray: one test at a time


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's stderr holds the CLI's line only
        pass


@contextlib.contextmanager
def web_server():
    """An HTTP server on a free local port: something answers there, but no Ray."""
    server = http.server.HTTPServer(("127.0.0.1", 0), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def parallel(*extra: str) -> list[str]:
    return ["--search.parallel", "2", *extra]


def test_a_web_server_address_is_one_line_within_the_timeout(capsys, tiny_data, tmp_path):
    with web_server() as address:
        run = tmp_path / "run"
        started = time.time()
        extra = parallel("--engine.address", address, "--engine.connect_timeout_s", "2")
        line = one_error(capsys, bo_args(tiny_data, run, 3, *extra))
        assert time.time() - started < 2 + 10
        assert "not a Ray cluster" in line and address in line
        assert not run.exists()  # refused before the folder is made


def test_a_resume_naming_a_web_server_is_one_line(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo_args(tiny_data, run, 1)) == 0
    capsys.readouterr()
    with web_server() as address:
        started = time.time()
        extra = ["--resume", str(run), "--budget", "2", *parallel("--engine.address", address)]
        line = one_error(capsys, ["bo", *extra, "--engine.connect_timeout_s", "2"])
        assert time.time() - started < 2 + 10 and "not a Ray cluster" in line


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--engine.cpus_per_trial", "1e-9"], "engine.cpus_per_trial"),
        (["--engine.cpus_per_trial", "0.123456"], "engine.cpus_per_trial"),
        (["--engine.connect_timeout_s", "1e300"], "engine.connect_timeout_s"),
        (["--engine.address", "nonsense"], "engine.address"),
        (["--engine.address", "ray://x"], "engine.address"),
        (["--engine.address", "127.0.0.1:99999"], "engine.address"),
    ],
)
def test_bad_engine_input_is_one_line_before_the_folder(capsys, tiny_data, tmp_path, flags, field):
    run = tmp_path / "run"
    line = one_error(capsys, bo_args(tiny_data, run, 3, *parallel(*flags)))
    assert field in line and len(line) < 300
    assert not run.exists()


def test_a_bad_ray_address_from_the_environment_is_named(capsys, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "nonsense")
    line = one_error(capsys, bo_args(tiny_data, tmp_path / "run", 3, *parallel()))
    assert "RAY_ADDRESS" in line and "engine.address" not in line


def test_a_claim_beyond_this_machine_leaves_no_folder_and_the_fix_runs(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    line = one_error(capsys, bo_args(tiny_data, run, 3, *parallel("--engine.cpus_per_trial", "99")))
    assert "engine.cpus_per_trial" in line and not run.exists()
    ok = RayRunner(Config(search=SearchConfig(parallel=2), engine=EngineConfig()))
    ok.preflight()  # the corrected claim passes the same check


def test_a_folder_made_before_an_engine_error_is_given_back(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.start({"seed": 0})
    folder.write_origin({})
    (folder.path / ".lock").write_text("")
    folder.discard()
    assert not folder.path.exists()
    folder.create()  # the corrected command takes it


@pytest.mark.parametrize(("low", "high"), [("1e-300", "1e300"), ("1e-40", "1"), ("0.001", "1e40")])
def test_a_range_that_cannot_be_drawn_is_one_line(capsys, tiny_data, tmp_path, low, high):
    params = f"[{{name: lr, low: {low}, high: {high}}}]"
    line = one_error(capsys, bo_args(tiny_data, tmp_path / "run", 3, "--search.params", params))
    assert "search.params[lr]" in line and "log-scale range" in line


def test_journal_indices_and_pending_are_checked():
    base = {"params": {"lr": 0.1}, "status": "ok", "objective": 1.0}
    with pytest.raises(ValueError, match="index"):
        TrialRecord.from_dict({**base, "index": 10**12})
    with pytest.raises(ValueError, match="pending"):
        TrialRecord.from_dict({**base, "index": 2, "pending": [2]})
    with pytest.raises(ValueError, match="pending"):
        TrialRecord.from_dict({**base, "index": 2, "pending": [-1]})
    assert TrialRecord.from_dict({**base, "index": 2, "pending": [0, 1]}).pending == [0, 1]


def test_a_huge_journal_index_is_one_line_on_resume(capsys, tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(bo_args(tiny_data, run, 1)) == 0
    capsys.readouterr()
    journal = run / "trials.jsonl"
    line = json.loads(journal.read_text())
    journal.write_text(json.dumps({**line, "index": 10**12}) + "\n")
    assert "index" in one_error(capsys, ["bo", "--resume", str(run), "--budget", "2"])


def test_error_lines_are_short_and_plain():
    err = RuntimeError("\x1b[31mboom\x1b[0m\n" + "x" * 2000 + "; resume with: boresnet bo")
    line = one_line(err)
    assert "\x1b" not in line and line.startswith("boom") and len(line) <= MAX_LINE
    assert line.endswith("resume with: boresnet bo")  # what to do survives the cut


def test_trial_numbers_lost_in_flight_stay_unused(tmp_path, monkeypatch):
    monkeypatch.delenv(START_INDEX_ENV, raising=False)
    folder = RunFolder(tmp_path / "run")
    folder.create()
    records = [TrialRecord(index=i, params={"lr": 0.1}, status="ok", objective=1.0) for i in (0, 1)]
    for index in (2, 3):  # started, then the driver was killed: never journalled
        folder.claim(index)
    study = Study(Config(), folder, "sha")
    assert study._first_index(records) == 4
    assert folder.next_unclaimed() == 4
    monkeypatch.delenv(START_INDEX_ENV, raising=False)


def raising_ray(error: BaseException):
    """``ray.wait`` and ``ray.get`` stand-ins whose trial raised ``error``."""
    return (lambda refs, num_returns: (refs[:1], refs[1:])), (
        lambda ref: (_ for _ in ()).throw(error)
    )


def runner_with_one_trial() -> RayRunner:
    runner = RayRunner(Config(search=SearchConfig(parallel=2)))
    runner._running["ref"] = Trial(0, {"lr": 0.1}, "sobol", 0, [])
    return runner


def test_a_worker_error_reaches_the_user_as_its_own_exception(monkeypatch):
    disk_full = OSError(28, "No space left on device")
    error = RayTaskError("run_trial", "\x1b[31mTraceback ...\x1b[0m" * 100, disk_full)
    wait, get = raising_ray(error)
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "get", get)
    with pytest.raises(OSError) as caught:
        runner_with_one_trial().wait()
    assert caught.value.errno == 28 and "\x1b" not in one_line(caught.value)
    assert len(one_line(caught.value)) < 100


def test_a_dead_raylet_is_a_machine_fault(monkeypatch):
    wait, get = raising_ray(LocalRayletDiedError())
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "get", get)
    with pytest.raises(MachineFault, match="Ray node died"):
        runner_with_one_trial().wait()


def test_the_study_keeps_its_signal_handlers_around_ray(monkeypatch):
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in previous:
            signal.signal(sig, handle_interrupt)
        with signal_handlers_kept():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # what ray.init does
        assert signal.getsignal(signal.SIGTERM) is handle_interrupt
        assert signal.getsignal(signal.SIGINT) is handle_interrupt
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_relative_data_dir_is_stored_absolute(capsys, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_data.parent)
    run = tmp_path / "run"
    assert main(bo_args(tiny_data.name, run, 1)) == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())["data"]["data_dir"]
    assert stored == str(tiny_data.resolve())
