"""Shared fixtures: tiny IDX files written by the tests, the real kmnist-mini if present."""

from __future__ import annotations

import fcntl
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from boresnet.cli.main import main

REPO = Path(__file__).resolve().parents[1]
MINI = Path(os.environ.get("BORESNET_MINI_DATA", REPO.parent / "shared" / "data" / "kmnist-mini"))

# make test runs two pytest-xdist workers on two cores: each, and every process it starts,
# uses one thread (two workers of two threads each ran the GP tests 4x slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# Tests that start processes of their own (Ray, DDP ranks) carry this mark: one xdist worker
# runs them (--dist loadgroup) and a lock keeps them one at a time whatever the scheduler
# does (_processes_one_at_a_time). Their checks that Ray left nothing behind read every
# process on the machine.
ONE_AT_A_TIME = pytest.mark.xdist_group("processes")

# Overrides that make a study take seconds: a 4-wide ResNet-9 on a few hundred images.
TINY = [
    "--model.width",
    "4",
    "--data.train_subset",
    "256",
    "--data.val_size",
    "128",
    "--data.batch_size",
    "64",
    "--trainer.max_epochs",
    "1",
    "--trainer.accelerator",
    "cpu",
    "--trainer.progress_bar",
    "false",
    "--search.num_restarts",
    "2",
    "--search.raw_samples",
    "64",
]


def bo_args(data, run_dir, budget=3, *extra) -> list[str]:
    """``boresnet bo`` arguments of a tiny CPU study in ``run_dir``."""
    return [
        "bo",
        "--config",
        str(REPO / "configs" / "cpu.yaml"),
        "--data-dir",
        str(data),
        *TINY,
        "--budget",
        str(budget),
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def one_error(capsys, args) -> str:
    """Run the CLI; it must exit 2 with exactly one ``boresnet: error:`` line, returned."""
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("boresnet: error:"), err
    return err[0]


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` (uint8) in the IDX format torchvision reads."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_kmnist(root: Path, n_train: int = 300, n_test: int = 60, seed: int = 0) -> Path:
    """Write a learnable fake KMNIST (class k: a bright bar at row 2k) under ``root``."""
    rng = np.random.default_rng(seed)
    raw = root / "KMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 * k + 3 : 2 * k + 6, 4:24] = 255
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A folder holding a small fake KMNIST in the official layout."""
    return make_kmnist(tmp_path / "data")


@pytest.fixture
def mini_data() -> Path:
    """The real kmnist-mini images (skips the test where they are absent)."""
    if not (MINI / "KMNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real KMNIST images not found at {MINI}")
    return MINI


@pytest.fixture
def study_data(tmp_path: Path) -> Path:
    """Real kmnist-mini where present, else the fake set: the smoke tests always run."""
    if (MINI / "KMNIST" / "raw" / "train-images-idx3-ubyte").exists():
        return MINI
    return make_kmnist(tmp_path / "data", n_train=1300, n_test=100)


@pytest.fixture(autouse=True)
def _no_network_download(monkeypatch):
    """Point the official download at a closed local port: tests never go online."""
    from torchvision.datasets import KMNIST

    monkeypatch.setattr(KMNIST, "mirrors", ["http://127.0.0.1:9/"])


@pytest.fixture(autouse=True)
def _processes_one_at_a_time(request, tmp_path_factory):
    """Run the tests marked ``ONE_AT_A_TIME`` one at a time across xdist workers.

    ``--dist loadgroup`` should already send them to one worker, but it groups silently or
    not at all (pytest 9.2 broke it: pytest-dev/pytest-xdist#1386), so a lock makes sure.
    """
    mark = request.node.get_closest_marker("xdist_group")
    if mark is None or mark.args != ONE_AT_A_TIME.mark.args:
        yield
        return
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # (shared)
    with open(root / "processes.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(autouse=True)
def _threads_unchanged():
    """Fail a test that leaves torch's thread count changed (and restore it).

    The resume tests compare a study run in this process with one run in a subprocess
    to the last digit; with another thread count here the sums differ in their last
    digits (a test that ran a benchmark's pool worker in-process once set it to 1).
    """
    threads = torch.get_num_threads()
    yield
    now = torch.get_num_threads()
    if now != threads:
        torch.set_num_threads(threads)
        pytest.fail(f"the test left torch's thread count at {now} (was {threads})")
