"""The training step never makes the host wait for the device: zero syncs per step.

A ``TorchDispatchMode`` sees every operator the middle steps of a real ``trainer.fit``
run (device loader, augmentation, label smoothing, metric, one-cycle schedule, the
divergence check): those that copy a device value to the host (``.item()``,
``float(t)``, ``bool(t)``, ``if t:`` all reach ``aten._local_scalar_dense``) or whose
output size depends on the data (``nonzero``, ``unique``, ``masked_select``, boolean
indexing) would stall a GPU's queue. So would ``Tensor.tolist``, ``.cpu()`` and
``.numpy()``, counted by wrapping them. On a CPU nothing waits, but the count is the
same code path a GPU runs.
"""

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils._python_dispatch import TorchDispatchMode

from boresnet.config.schema import Config, DataConfig, ModelConfig, OptimConfig, TrainerConfig
from boresnet.training.trial import build_datamodule, build_module, build_trainer

SYNCING = {
    "aten::_local_scalar_dense",
    "aten::is_nonzero",
    "aten::item",
    "aten::nonzero",
    "aten::nonzero_static",
    "aten::_unique",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::masked_select",
    "aten::equal",
}
HOST_COPIES = ("tolist", "cpu", "numpy")
CHECK_EVERY = 10  # the module reads its loss sum at steps 0, 10, 20...
WINDOW = (2, 8)  # the middle steps between two reads


class SyncCounter(TorchDispatchMode):
    """Records every operator that would make the host wait for the device."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.active = False

    def __enter__(self):
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc):
        self.active = False
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in SYNCING:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


class Window(Callback):
    """Counts from the start of step ``first`` to the end of step ``last``."""

    def __init__(self, counter: SyncCounter, first: int, last: int) -> None:
        self.counter, self.first, self.last = counter, first, last
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.first:
            self.counter.__enter__()
        if self.first <= batch_idx <= self.last:
            self.steps += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.last:
            self.counter.__exit__(None, None, None)


def tiny_config(data) -> Config:
    return Config(
        data=DataConfig(
            data_dir=str(data), train_subset=16 * 12, val_size=32, batch_size=16, loader="device"
        ),
        model=ModelConfig(width=2),
        optim=OptimConfig(lr=0.05, translate=2, label_smoothing=0.1, schedule="onecycle"),
        trainer=TrainerConfig(
            accelerator="cpu",
            devices=1,
            max_epochs=1,
            progress_bar=False,
            divergence_check_every=CHECK_EVERY,
        ),
    )


def count_syncs(data, monkeypatch, step_patch=None) -> tuple[list[str], int]:
    """The syncing operators of the middle steps of one short fit, and the steps seen."""
    counter = SyncCounter()
    for method in HOST_COPIES:
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _name=method, **kwargs):
            if counter.active:
                counter.seen.append(f"Tensor.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    config = tiny_config(data)
    module = build_module(config)
    if step_patch is not None:
        step_patch(module)
    window = Window(counter, *WINDOW)
    trainer = build_trainer(
        config,
        callbacks=[window],
        limit_val_batches=0,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=build_datamodule(config, seed=0))
    return counter.seen, window.steps


def test_the_middle_steps_of_training_make_no_host_sync(tiny_data, monkeypatch):
    seen, steps = count_syncs(tiny_data, monkeypatch)
    assert steps == WINDOW[1] - WINDOW[0] + 1
    assert seen == [], f"host syncs in {steps} training steps: {seen}"


def test_a_stray_item_in_the_training_step_is_counted(tiny_data, monkeypatch):
    def stray_item(module):
        step = module.training_step

        def training_step(batch, batch_idx):
            loss = step(batch, batch_idx)
            loss.item()  # the kind of line this test exists to catch
            return loss

        module.training_step = training_step

    seen, steps = count_syncs(tiny_data, monkeypatch, stray_item)
    assert seen.count("aten::_local_scalar_dense") == steps


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_between_two_reads_still_stops_the_trial(tiny_data, bad):
    # The loss sum stays on the device between reads: a NaN at step 3 is seen at step 10.
    config = tiny_config(tiny_data)
    module = build_module(config)
    loss_of = module._loss
    calls = []

    def poisoned_loss(logits, y, smoothing=0.0):
        calls.append(1)
        return loss_of(logits, y, smoothing) * (bad if len(calls) == 4 else 1.0)

    module._loss = poisoned_loss
    trainer = build_trainer(config, limit_val_batches=0)
    trainer.fit(module, datamodule=build_datamodule(config, seed=0))
    assert module.divergence is not None and "step 10" in module.divergence, module.divergence
    assert trainer.global_step == 11  # stopped at the read, not at the end of the epoch
