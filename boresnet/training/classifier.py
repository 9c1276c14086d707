"""The LightningModule that trains a ResNet on KMNIST with SGD.

Logs ``train_loss``/``train_acc`` per epoch and ``val_loss``/``val_acc``/``test_acc``
reduced across ranks. Per-step values are not logged: reading them back would force a
host sync on every GPU step. It also stops a diverging run (:attr:`divergence`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from boresnet.training.data import KMNIST_MEAN, KMNIST_STD
from boresnet.training.resnet import resnet9


def random_translate(
    x: torch.Tensor, pixels: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to ``pixels`` in x and y, filling with background.

    Pure tensor ops, so it runs on the device that holds the batch. No flips: these
    are characters, and a mirrored character is another (or no) character.

    Args:
        x: Normalised images ``(N, C, H, W)``.
        pixels: Largest shift.
        generator: Random source on ``x``'s device (default: the global one).

    Returns:
        The shifted images, same shape and dtype.
    """
    if pixels <= 0:
        return x
    n, _, h, w = x.shape
    background = (0.0 - KMNIST_MEAN) / KMNIST_STD
    padded = F.pad(x, (pixels,) * 4, value=background)
    shift = torch.randint(0, 2 * pixels + 1, (2, n, 1), device=x.device, generator=generator)
    rows = (torch.arange(h, device=x.device) + shift[0])[:, :, None]  # (N, H, 1)
    cols = (torch.arange(w, device=x.device) + shift[1])[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


@dataclass
class EpochTotals:
    """A training epoch's running totals, kept outside the module's attributes.

    Assigning a module attribute goes through ``nn.Module.__setattr__``, 23 Python
    calls (counted: ``throughput.py --host-only``); a field of this plain object, none.

    Attributes:
        loss_sum: Sum of the per-image training losses, on the device (``None`` before
            the first epoch).
        images: Images seen this epoch, counted on the host.
    """

    loss_sum: torch.Tensor | None = None
    images: int = 0


class ResNetClassifier(L.LightningModule):
    """A ResNet-9 image classifier trained by SGD.

    Args:
        width: ResNet-9 width (prep channels; stages use 2x, 4x, 8x).
        blocks: Residual blocks after each stage.
        convs_per_block: Convolutions per residual block.
        num_classes: Output classes.
        lr: Peak learning rate (the tuned quantity).
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay.
        schedule: ``constant`` or ``onecycle`` (linear warm-up to ``lr``, then down).
        warmup_fraction: Fraction of steps spent warming up under ``onecycle``.
        label_smoothing: Cross-entropy label smoothing.
        translate: Random translation augmentation, in pixels (0 disables).
        channels_last: Use the channels-last memory format (faster convs on GPU).
        divergence_check_every: Steps between reads of the epoch's loss sum, the one
            host sync of training (``trainer.divergence_check_every``).

    Attributes:
        divergence: Why training stopped early, or ``None``: the training loss became
            non-finite (the learning rate is too high).
    """

    def __init__(
        self,
        width: int = 64,
        blocks: Sequence[int] = (1, 0, 1),
        convs_per_block: int = 2,
        num_classes: int = 10,
        lr: float = 0.05,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 5e-4,
        schedule: str = "onecycle",
        warmup_fraction: float = 0.25,
        label_smoothing: float = 0.0,
        translate: int = 0,
        channels_last: bool = False,
        divergence_check_every: int = 10,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # Plain attributes for what every step reads: ``self.hparams`` is a property
        # returning a dict with attribute access, about 1 us a read.
        self._translate = translate
        self._channels_last = channels_last
        self._smoothing = label_smoothing
        self._check_every = divergence_check_every
        self.divergence: str | None = None
        self.model = resnet9(
            width, num_classes, blocks=tuple(blocks), convs_per_block=convs_per_block
        )
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # Updated every step, computed once per epoch. Without argument validation: it
        # checks the labels' range with a host sync every step (the labels were checked
        # once, at load: boresnet.training.data).
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        self.last_confusion: torch.Tensor | None = None
        self._epoch = EpochTotals()
        self._augment_rng: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for normalised images."""
        return self.model(x)

    def on_train_start(self) -> None:
        """Seed the augmentation's own random stream, once per ``fit``, on the device.

        Its own stream: the DataLoader draws from the global one, and the augmentation
        must not depend on which loader serves the batches. Made here rather than at the
        first batch so that no step pays for checking it.
        """
        self._augment_rng = torch.Generator(device=self.device)
        self._augment_rng.manual_seed(torch.initial_seed() + self.global_rank)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Augment training batches on the device; set the memory format."""
        x, y = batch
        if self._augment_rng is not None and self._translate and self.training:
            x = random_translate(x, self._translate, self._augment_rng)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0):
        return F.cross_entropy(logits.float(), y, label_smoothing=smoothing)

    def on_train_epoch_start(self) -> None:
        """Zero the epoch's loss sum (on the device: nothing waits for it per step)."""
        self._epoch = EpochTotals(torch.zeros((), device=self.device))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """One SGD step's loss; the epoch's metrics accumulate on the device.

        No ``self.log`` here: each call costs Python bookkeeping every step, and the
        training metrics are reported per epoch anyway (:meth:`on_train_epoch_end`).
        """
        x, y = batch
        logits = self.model(x)  # not self(x): one module call less per step
        loss = self._loss(logits, y, self._smoothing)
        self.train_acc.update(logits.detach(), y)
        # One in-place kernel (``+=`` with a product is two, and a module __setattr__).
        self._epoch.loss_sum.add_(loss.detach(), alpha=len(y))
        self._epoch.images += len(y)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """Every ``divergence_check_every`` steps, stop if the loss became non-finite.

        A hook of the module, not a callback: Lightning calls each of a callback's
        seven per-step hooks whether it is overridden or not (about 40 us a step).
        """
        if batch_idx % self._check_every == 0:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self._check_divergence(batch_idx, loss)

    def _check_divergence(self, batch_idx: int, loss: torch.Tensor | None = None) -> None:
        """Read the loss sum, agree across ranks, and stop every rank at once.

        The sum is finite exactly while every loss was: a NaN or an infinity never
        cancels out (short of a float32 overflow, which only a diverging run reaches).
        Any rank's NaN stops them all through ``trainer.should_stop``: raising on one
        rank would leave the others waiting in a collective forever.
        """
        if self.divergence is not None or self._epoch.loss_sum is None:
            return
        bad = not bool(torch.isfinite(self._epoch.loss_sum))  # the one wait for the device
        trainer = self.trainer
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            where = "non-finite" if bad else "non-finite on another rank"
            if bad and loss is not None and not math.isfinite(now := loss.float().item()):
                where = f"{now}"  # this step's own value ("nan", "inf") when it is one
            self.divergence = (
                f"training loss became {where} at epoch {trainer.current_epoch}, step "
                f"{batch_idx}: the learning rate is too high"
            )
            trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        """Check for divergence once more; log the epoch's mean loss and accuracy."""
        # A NaN after the last periodic check still stops the trial.
        self._check_divergence(self.trainer.num_training_batches - 1)
        mean_loss = self._epoch.loss_sum / self._epoch.images
        self.log("train_loss", mean_loss, prog_bar=True, sync_dist=True)
        # compute() already gathers the ranks' counts: sync_dist averages equal values
        # (one collective per epoch; without it Lightning warns under DDP).
        self.log("train_acc", self.train_acc.compute(), sync_dist=True)
        self.train_acc.reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        """Accumulate validation loss (unsmoothed) and accuracy."""
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log(
            "val_loss",
            self._loss(logits, y),
            on_epoch=True,
            prog_bar=True,
            batch_size=len(y),
            sync_dist=True,
        )
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    def test_step(self, batch, batch_idx: int) -> None:
        """Accumulate test loss, accuracy and the confusion matrix."""
        x, y = batch
        logits = self(x)
        self.test_acc(logits, y)
        self.test_confusion.update(logits, y)
        self.log(
            "test_loss", self._loss(logits, y), on_epoch=True, batch_size=len(y), sync_dist=True
        )
        self.log("test_acc", self.test_acc, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        """Keep the confusion matrix (rows: true class) for the final report."""
        self.last_confusion = self.test_confusion.compute().cpu()
        self.test_confusion.reset()

    def configure_optimizers(self):
        """SGD, with a per-step one-cycle schedule peaking at ``lr`` if requested."""
        hp = self.hparams
        optimizer = torch.optim.SGD(
            self.parameters(),
            lr=hp.lr,
            momentum=hp.momentum,
            nesterov=hp.nesterov and hp.momentum > 0,
            weight_decay=hp.weight_decay,
            # One multi-tensor kernel per update instead of one per parameter, on the
            # CPU too (torch picks it by itself only for CUDA parameters).
            foreach=True,
        )
        if hp.schedule == "constant":
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        if not math.isfinite(total) or total < 1:
            return optimizer
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=hp.lr,
            # OneCycleLR needs >= 2 steps in each phase; tiny test runs have fewer.
            total_steps=max(total, math.ceil(2 / hp.warmup_fraction) + 2),
            pct_start=hp.warmup_fraction,
            anneal_strategy="linear",
            cycle_momentum=False,
            # Start at lr/10 and anneal to lr/1000 (not tuned: a common one-cycle shape).
            div_factor=10.0,
            final_div_factor=100.0,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
