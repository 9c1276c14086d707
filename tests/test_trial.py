import sys

import lightning as L
import pytest
import torch

from boresnet.config.schema import Config
from boresnet.training import trial
from boresnet.training.classifier import ResNetClassifier
from boresnet.training.faults import MachineFault
from boresnet.training.trial import build_datamodule, run_trial


def tiny_config(data_dir, **trainer) -> Config:
    config = Config()
    config.data.data_dir = str(data_dir)
    config.data.val_size = 60
    config.data.batch_size = 32
    config.model.width = 4
    config.trainer.accelerator = "cpu"
    config.trainer.max_epochs = 1
    config.trainer.progress_bar = False
    for key, value in trainer.items():
        setattr(config.trainer, key, value)
    return config


def test_fast_dev_run_of_the_module(tiny_data):
    module = ResNetClassifier(width=4, schedule="onecycle")
    trainer = L.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=build_datamodule(tiny_config(tiny_data)))
    assert {"train_loss", "val_loss", "val_acc"} <= set(trainer.callback_metrics)


def test_fast_dev_run_through_run_trial(tiny_data):
    result = run_trial(
        tiny_config(tiny_data), {"lr": 0.1}, trainer_overrides={"fast_dev_run": True}
    )
    # What a real validation pass measured: a finite, positive loss (chance is 2.3) and
    # an accuracy in [0, 1]; a trial that skipped validation would have neither.
    assert result.status == "ok" and result.error is None
    assert 0 < result.objective < 10 and 0 <= result.val_acc <= 1


@pytest.mark.slow
def test_trial_learns_the_fake_task(tiny_data):
    config = tiny_config(tiny_data, max_epochs=3)
    result = run_trial(config, {"lr": 0.5}, seed=0)
    assert result.status == "ok" and result.val_acc > 0.5, result
    config.search.objective = "val_error"
    again = run_trial(config, {"lr": 0.5}, seed=0)
    assert again.objective == pytest.approx(1 - again.val_acc)
    assert again.val_acc == pytest.approx(result.val_acc)  # seeded: same run twice


def test_absurd_learning_rate_diverges_without_raising(tiny_data):
    config = tiny_config(tiny_data, divergence_check_every=1, max_epochs=5)
    result = run_trial(config, {"lr": 1e6})
    assert result.status == "diverged"
    assert result.objective is None and "learning rate" in result.error
    assert result.epochs < 5  # stopped early


def test_exception_in_training_is_a_failed_trial(tiny_data, monkeypatch):
    def boom(self, batch, batch_idx):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ResNetClassifier, "training_step", boom)
    result = run_trial(tiny_config(tiny_data), {"lr": 0.1})
    assert result.status == "failed" and "out of memory" in result.error


def test_a_peer_lost_at_the_checkpoint_barrier_is_a_machine_fault(tiny_data, tmp_path, monkeypatch):
    def reset(trainer, target):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer")

    monkeypatch.setattr(trial, "save_checkpoint", reset)
    with pytest.raises(MachineFault, match="Connection reset by peer"):
        run_trial(tiny_config(tiny_data), {"lr": 0.1}, checkpoint=tmp_path / "best.ckpt")


def test_real_kmnist_short_training(mini_data):
    config = tiny_config(mini_data)
    config.model.width = 8
    config.data.train_subset = 500
    config.trainer.max_epochs = 3
    config.data.val_size = 200
    result = run_trial(config, {"lr": 1.0}, seed=0)
    assert result.status == "ok"
    assert result.val_acc > 0.3, result  # chance is 0.1


def test_device_loader_trains_exactly_like_the_dataloader(tiny_data):
    results = []
    for loader in ("dataloader", "device"):
        config = tiny_config(tiny_data, max_epochs=2)
        config.data.loader = loader
        config.optim.translate = 2  # augmentation runs on the batch, on either path
        results.append(run_trial(config, {"lr": 0.3}, seed=3))
    a, b = results
    assert a.status == b.status == "ok"
    assert a.val_loss == pytest.approx(b.val_loss, rel=1e-5)
    assert a.val_acc == b.val_acc


@pytest.mark.parametrize("name", ["cpu.yaml", "kmnist.yaml"])
def test_shipped_configs_parse_and_fast_dev_run(name, tiny_data):
    from boresnet.cli.main import build_parsers
    from boresnet.config.schema import config_from
    from conftest import REPO

    parser, _ = build_parsers()
    ns = parser.parse_args(["train", "--config", str(REPO / "configs" / name)])
    config = config_from(ns.train.as_dict())
    assert config.data.data_dir == "data" and config.search.budget == 10
    config.data.data_dir = str(tiny_data)
    config.data.val_size = 50
    config.model.width = 4  # same recipe (channels-last, smoothing, shifts), tiny model
    config.trainer.accelerator = "cpu"
    config.trainer.devices = 1
    config.trainer.progress_bar = False
    result = run_trial(config, {"lr": 0.1}, trainer_overrides={"fast_dev_run": True})
    assert result.status == "ok", result


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from boresnet.config.schema import Config, TrainerConfig
    from boresnet.training.trial import build_trainer

    config = Config(trainer=TrainerConfig(accelerator="cpu", progress_bar=True))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert build_trainer(config).progress_bar_callback is None  # a log file: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert build_trainer(config).progress_bar_callback is not None


def test_a_blown_up_finite_loss_is_a_divergence(tiny_data, monkeypatch):
    def huge(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(4.7e10), on_epoch=True, batch_size=len(batch[1]))
        self.log("val_acc", torch.tensor(0.09), on_epoch=True, batch_size=len(batch[1]))

    monkeypatch.setattr(ResNetClassifier, "validation_step", huge)
    result = run_trial(tiny_config(tiny_data, max_epochs=1), {"lr": 0.1})
    assert result.status == "diverged" and result.objective is None
    assert "chance level" in result.error
