"""Training speed of the Lightning path against two plain PyTorch loops, and BO overhead.

Baselines, both training the same ResNet-9 with the same SGD + one-cycle schedule, batch
size and precision: the *DataLoader loop* feeds host batches through the project's
DataLoader (the CPU baseline), and the *tight loop* keeps the whole training set on the
device, slices shuffled batches there, and runs bf16 autocast and channels-last on a
GPU, with no framework at all (the GPU baseline: what the hardware can do). All paths
alternate in one process after a warm-up of each, so drift affects them alike. The
Lightning figure times the epoch from inside (a callback) and, separately, the whole
``fit`` call including its start-up.

The host overhead (``host_overhead_ms_per_step``) is the Lightning path's time per
step minus the tight loop's, both with a model that costs nearly nothing (one linear
layer on each image's mean), device-resident data, augmentation, label smoothing, the
metric and the schedule, batch 512: what Python and the framework add to every step,
which a fast GPU waits for. A bare LightningModule (no metric, no logging, no
augmentation) is measured beside it.

Usage::

    python benchmarks/throughput.py [--config configs/cpu.yaml] [--reps 3] [--quick]
    python benchmarks/throughput.py --host-only --out host.json   # the host overhead alone

``benchmarks/host_before_after.sh`` runs ``--host-only`` on an earlier commit's package
and on this one: the before/after figures of the README.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback
from torchmetrics.classification import MulticlassAccuracy

from boresnet.atomic import write_text
from boresnet.cli.main import quiet_libraries
from boresnet.config.schema import ParamConfig, from_dict
from boresnet.plots.common import close
from boresnet.plots.iteration import draw_iteration
from boresnet.training.classifier import random_translate
from boresnet.training.trial import build_datamodule, build_module, build_trainer
from boresnet.tuner import BayesianOptimizer
from boresnet.tuner.rules import gap_point
from boresnet.tuner.space import SearchSpace

try:  # earlier commits (host_before_after.sh) checked divergence in a callback
    from boresnet.training.trial import DivergenceMonitor
except ImportError:  # now the module does, as its own hook
    DivergenceMonitor = None

ROOT = Path(__file__).resolve().parents[1]


class EpochTimer(Callback):
    """Wall time of each training epoch, synchronising the device at both ends."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def _sync(self, module) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: D102
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._sync(pl_module)
        self.seconds.append(time.perf_counter() - self._start)


class CallCounter:
    """Python function calls and calls of built-ins, counted through ``sys.setprofile``.

    The count per step is exact and the same on every run: the host's work per step
    without the timing noise of a shared machine (Python calls cost about the same).
    """

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame, event: str, arg) -> None:  # noqa: D102
        if event in ("call", "c_call"):
            self.calls += 1

    def __enter__(self) -> CallCounter:
        sys.setprofile(self)
        return self

    def __exit__(self, *exc) -> None:
        sys.setprofile(None)


@dataclasses.dataclass
class Steps:
    """What each step of one epoch cost: seconds and (when counted) Python calls."""

    seconds: np.ndarray
    calls: np.ndarray


class StepMarks:
    """The start of each step: the time, and the calls counted so far (if counting)."""

    def __init__(self, counter: CallCounter | None = None) -> None:
        self.counter = counter
        self.marks: list[tuple[float, int]] = []

    def mark(self) -> None:
        """Record the start of a step (and, once more, the end of the last one)."""
        self.marks.append((time.perf_counter(), self.counter.calls if self.counter else 0))

    def steps(self) -> Steps:
        """Each step's cost, start to next start: everything a step does."""
        marks = np.array(self.marks)
        return Steps(np.diff(marks[:, 0]), np.diff(marks[:, 1]))


class StepTimer(Callback):
    """The start of each training step through Lightning (see :class:`StepMarks`)."""

    def __init__(self, counter: CallCounter | None = None) -> None:
        self.marks = StepMarks(counter)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: D102
        self.marks.mark()


def lightning_epoch(config, lr: float) -> tuple[float, float, int]:
    """Train one epoch through the project's path: ``(epoch_s, fit_s, images)``."""
    timer = EpochTimer()
    datamodule = build_datamodule(config, seed=0)
    trainer = build_trainer(config, callbacks=[timer], max_epochs=1, limit_val_batches=0)
    module = build_module(config)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    fit_s = time.perf_counter() - start
    return timer.seconds[0], fit_s, len(datamodule.train_set)


def plain_epoch(config, lr: float, device: torch.device) -> tuple[float, int]:
    """Train one epoch with a minimal PyTorch loop on a DataLoader: ``(epoch_s, images)``."""
    # The DataLoader whatever the config says: it is the baseline a PyTorch user writes.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, loader="dataloader"))
    datamodule = build_datamodule(config, seed=0)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    model = build_module(config).model.to(device)
    o = config.optim
    opt = torch.optim.SGD(
        model.parameters(),
        lr=lr,
        momentum=o.momentum,
        nesterov=o.nesterov,
        weight_decay=o.weight_decay,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=lr,
        total_steps=len(loader),
        pct_start=o.warmup_fraction,
        anneal_strategy="linear",
        cycle_momentum=False,
    )
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, len(datamodule.train_set)


def tight_epoch(config, lr: float, device: torch.device) -> tuple[float, int]:
    """One epoch of the tight loop with the config's model: ``(epoch_s, images)``."""
    epoch_s, _, images, _ = tight_loop(config, lr, device, build_module(config).model)
    return epoch_s, images


class Negligible(torch.nn.Module):
    """A model that costs nearly nothing: one linear layer on each image's mean.

    With it a step's time is the host's (Python, the framework, kernel launches), which
    is what limits a fast GPU once the model is small.
    """

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.linear(x.mean(dim=(1, 2, 3)).unsqueeze(1))


class BareModule(L.LightningModule):
    """The least a LightningModule can be: forward, loss, SGD. No metric, log, augmentation.

    ``translate``: shift the images as the project's module does (0: no augmentation), to
    see how Lightning's own cost grows with the step's compute.
    """

    def __init__(self, lr: float, translate: int = 0) -> None:
        super().__init__()
        self.model = Negligible()
        self.lr = lr
        self.translate = translate
        self.generator = torch.Generator().manual_seed(0)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:  # noqa: D102
        x, y = batch
        if self.translate:
            x = random_translate(x, self.translate, self.generator)
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):  # noqa: D102
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, foreach=True)


def host_config(config, steps: int, batch: int = 512):
    """The config for host-overhead runs: device loader, augmentation, label smoothing.

    ``steps`` batches of ``batch`` images (the training images tiled to that many).
    """
    return dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, batch_size=batch, loader="device", tile_train=steps * batch
        ),
        optim=dataclasses.replace(config.optim, translate=2, label_smoothing=0.1),
        trainer=dataclasses.replace(config.trainer, progress_bar=False),
    )


def lightning_steps(
    config,
    lr: float,
    bare: bool = False,
    counter: CallCounter | None = None,
    translate: int = 0,
) -> Steps:
    """The steps of one epoch through Lightning with the negligible model.

    ``bare``: :class:`BareModule` (``translate``: its augmentation) instead of the project's.
    """
    timer = StepTimer(counter)
    datamodule = build_datamodule(config, seed=0)
    callbacks = [timer]
    if DivergenceMonitor is not None and not bare:  # what a trial of that commit used
        callbacks.append(DivergenceMonitor(config.trainer.divergence_check_every))
    trainer = build_trainer(
        config, callbacks=callbacks, max_epochs=1, limit_val_batches=0, logger=False
    )
    if bare:
        module = BareModule(lr, translate)
    else:
        module = build_module(config)
        module.model = Negligible()
    if counter is None:
        trainer.fit(module, datamodule=datamodule)
    else:
        with counter:
            trainer.fit(module, datamodule=datamodule)
    return timer.marks.steps()


def tight_loop(
    config,
    lr: float,
    device: torch.device,
    model=None,
    bare: bool = False,
    counter: CallCounter | None = None,
    translate: int = 0,
) -> tuple[float, int, int, Steps]:
    """One epoch of the tight loop: ``(seconds, steps, images, each step's cost)``.

    It does all the Lightning path does per step, with no framework: device-resident
    batches, the same augmentation and label smoothing, a metric update, foreach SGD,
    the one-cycle schedule and an on-device loss sum (the epoch's loss; it is finite
    exactly while no loss diverged); bf16 autocast and
    channels-last on a GPU. ``model``: the negligible one by default. ``bare``: what
    :class:`BareModule` does (forward, loss, SGD with momentum, ``translate``), for its
    comparison.
    """
    if bare:
        return bare_tight_loop(config, lr, device, counter, translate)
    datamodule = build_datamodule(config, seed=0)
    datamodule.setup("fit")
    x, y = (t.to(device) for t in datamodule.train_set.tensors)
    model = (model or Negligible()).to(device)
    if config.model.channels_last and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
        model = model.to(memory_format=torch.channels_last)
    o, batch = config.optim, config.data.batch_size
    steps = -(-len(x) // batch)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=lr,
        momentum=o.momentum,
        nesterov=o.nesterov,
        weight_decay=o.weight_decay,
        foreach=True,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=steps, pct_start=o.warmup_fraction, cycle_momentum=False
    )
    metric = MulticlassAccuracy(10, average="micro", validate_args=False).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    loss_sum = torch.zeros((), device=device)  # the epoch's train_loss; finite = no NaN
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    model.train()

    def step(idx: torch.Tensor) -> None:
        xb = random_translate(x[idx], o.translate, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), y[idx], label_smoothing=o.label_smoothing)
        metric.update(logits.detach(), y[idx])
        loss_sum.add_(loss.detach(), alpha=len(idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()

    return timed_epoch(step, len(x), batch, device, counter)


def bare_tight_loop(
    config,
    lr: float,
    device: torch.device,
    counter: CallCounter | None = None,
    translate: int = 0,
) -> tuple[float, int, int, Steps]:
    """The tight loop of :class:`BareModule`: forward, loss, SGD with momentum."""
    datamodule = build_datamodule(config, seed=0)
    datamodule.setup("fit")
    x, y = (t.to(device) for t in datamodule.train_set.tensors)
    model = Negligible().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, foreach=True)
    generator = torch.Generator(device=device).manual_seed(0)

    def step(idx: torch.Tensor) -> None:
        xb = random_translate(x[idx], translate, generator) if translate else x[idx]
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed_epoch(step, len(x), config.data.batch_size, device, counter)


def timed_epoch(
    step, n: int, batch: int, device: torch.device, counter: CallCounter | None = None
) -> tuple[float, int, int, Steps]:
    """Run ``step`` on each batch of a shuffled pass: ``(seconds, steps, images, steps' cost)``.

    The device is synchronised at both ends.
    """
    steps = -(-n // batch)
    marks = StepMarks(counter)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    order = torch.randperm(n, device=device)
    with counter or contextlib.nullcontext():
        for i in range(steps):
            marks.mark()
            step(order[i * batch : (i + 1) * batch])
        if device.type == "cuda":
            torch.cuda.synchronize()
        marks.mark()
    return time.perf_counter() - start, steps, n, marks.steps()


# A run's step time is its 10th percentile step: the step's cost when the machine did
# not disturb it. Measured on this shared 2-core machine (16 alternating repetitions,
# split in halves): the half-to-half spread of the result was 0.10 ms with it, 0.30 ms
# with the median step and 0.15 ms with the fastest step.
STEP_QUANTILE = 0.1


def host_overhead(config, lr: float, device: torch.device, reps: int) -> dict[str, float]:
    """Milliseconds per step the Lightning path spends above a tight loop, negligible model.

    The project's module against the tight loop doing the same per step, and a bare
    LightningModule against the bare tight loop (Lightning's own cost per step), and
    the two again with the module's augmentation (on a CPU Lightning's cost grows with
    the step's compute). All six alternate in one process after a warm-up; each run's
    figure is its ``STEP_QUANTILE`` step (start to start). An overhead is the median
    over ``reps`` of the difference between two neighbouring runs: a slow spell of the
    machine then lifts both sides of a pair. One more run of each counts the Python calls per step,
    the same figure without noise.

    On the CPU the measurement runs on one thread. With the negligible model the step's
    compute is the augmentation's gather, and on this shared 2-core machine the second
    thread's wake-ups made runs of the same code differ by up to 2 ms per step (one
    thread: 0.2 ms); the host's Python runs on one thread either way.
    """
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)

    def steps_of(name: str, counter: CallCounter | None = None) -> Steps:
        bare = name.startswith("bare")
        shift = config.optim.translate if name.startswith("bare_aug") else 0
        if name.endswith("module"):
            return lightning_steps(config, lr, bare, counter, shift)
        return tight_loop(config, lr, device, bare=bare, counter=counter, translate=shift)[3]

    names = ("module", "tight", "bare_module", "bare_tight", "bare_aug_module", "bare_aug_tight")
    try:
        for name in names:
            steps_of(name)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in names}
        for rep in range(reps):
            for name in names[:: 1 if rep % 2 == 0 else -1]:
                seconds = steps_of(name).seconds
                times[name].append(1000 * float(np.quantile(seconds, STEP_QUANTILE)))
        calls = {name: float(np.median(steps_of(name, CallCounter()).calls)) for name in names}
    finally:
        torch.set_num_threads(threads)

    def overhead(slow: str, fast: str, reps_used=slice(None)) -> float:
        pairs = np.subtract(times[slow], times[fast])[reps_used]
        return round(float(np.median(pairs)), 3)

    module_overhead = overhead("module", "tight")
    bare_overhead = overhead("bare_module", "bare_tight")
    # How sure the timed figure is: the same figure over repetitions drawn with
    # replacement (1,000 draws), its 5th and 95th percentiles.
    draws = np.random.default_rng(0).integers(0, reps, size=(1000, reps))
    above = [
        overhead("module", "tight", d) - overhead("bare_module", "bare_tight", d) for d in draws
    ]
    bare_aug_overhead = overhead("bare_aug_module", "bare_aug_tight")
    module_calls = calls["module"] - calls["tight"]
    bare_calls = calls["bare_module"] - calls["bare_tight"]
    return {
        "host_overhead_ms_per_step": module_overhead,
        "bare_lightning_overhead_ms_per_step": bare_overhead,
        "above_bare_ms_per_step": round(module_overhead - bare_overhead, 3),
        "above_bare_ms_per_step_90pct_interval": [
            round(float(np.quantile(above, q)), 3) for q in (0.05, 0.95)
        ],
        "python_calls_per_step_above_tight": module_calls,
        "bare_lightning_python_calls_per_step": bare_calls,
        "python_calls_per_step_above_bare": module_calls - bare_calls,
        # The calls above the bare loop at what a call of the bare loop costs: the same
        # figure as above_bare_ms_per_step, with no timing noise.
        "above_bare_ms_per_step_from_calls": round(
            (module_calls - bare_calls) * bare_overhead / max(bare_calls, 1.0), 3
        ),
        # The bare module and its tight loop, both with the same augmentation: on a CPU,
        # where the kernels run on the host too, Lightning's own cost grows with them.
        "bare_aug_lightning_overhead_ms_per_step": bare_aug_overhead,
        "above_bare_aug_ms_per_step": round(module_overhead - bare_aug_overhead, 3),
        "tight_loop_ms_per_step": round(float(np.median(times["tight"])), 3),
        "bare_tight_loop_ms_per_step": round(float(np.median(times["bare_tight"])), 3),
        "step_quantile": STEP_QUANTILE,
        "threads": torch.get_num_threads() if device.type == "cuda" else 1,
        "host_reps": reps,
    }


def bo_overhead(
    dim: int, n_obs: int, seed: int = 0, failures: int = 0, repeats: int = 3
) -> tuple[float, float, float, float]:
    """Seconds for one BO step (GP fit + acquisition), its figure, an exploration, a gap.

    The third number is an exploration step's extra acquisition optimisation, the fourth
    the gap step's search for the largest hole: a step that explores, or takes the gap,
    pays it on top of the first. Each is the median of ``repeats`` fresh optimisers
    told the same observations (a single timing on this shared machine once read 2x).

    ``failures`` of the observations diverged: a feasibility GP is fitted too.
    """
    params = [
        ParamConfig("lr", 1e-3, 10.0, "log"),
        ParamConfig("momentum", 0.0, 0.99, "linear"),
        ParamConfig("weight_decay", 1e-6, 1e-2, "log"),
    ][:dim]
    space = SearchSpace(params)
    rng = np.random.default_rng(seed)
    told = []
    for i in range(n_obs):
        p = space.from_unit(torch.tensor(rng.random(dim), dtype=torch.double))
        x = space.to_coords(p).numpy()
        if i < failures:
            told.append((p, None, "diverged"))
        else:
            told.append((p, float(np.sum((x - 0.3) ** 2) + 0.05 * rng.standard_normal()), "ok"))
    times: list[tuple[float, float, float]] = []
    for _ in range(repeats):
        opt = BayesianOptimizer(space, seed=seed)
        for p, value, status in told:
            opt.tell(p, value, status)
        start = time.perf_counter()
        nxt = opt.ask()
        step_s = time.perf_counter() - start
        start = time.perf_counter()
        opt.exploration_point()
        explore_s = time.perf_counter() - start
        start = time.perf_counter()
        gap_point(opt.space, opt.exclusions(), opt.surrogate(), opt.seed)
        times.append((step_s, explore_s, time.perf_counter() - start))
    start = time.perf_counter()
    fig = draw_iteration(opt, nxt, title="overhead")
    fig.savefig("/dev/null", format="png", dpi=110)
    close(fig)
    figure_s = time.perf_counter() - start
    step_s, explore_s, gap_s = (statistics.median(t) for t in zip(*times, strict=True))
    return step_s, figure_s, explore_s, gap_s


def describe(device: torch.device) -> str:
    """The device in words: the GPU's name, or the CPU and its threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def main() -> None:
    """Run the A/B comparison and the overhead measurement; print and save JSON."""
    quiet_libraries()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "cpu.yaml"))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "kmnist-mini"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small subset, 1 rep")
    parser.add_argument("--train-subset", type=int, default=None, help="images per epoch")
    parser.add_argument("--width", type=int, default=None, help="override model.width")
    parser.add_argument(
        "--tile-train",
        type=int,
        default=None,
        help="repeat the training images to this many (a full-size epoch)",
    )
    parser.add_argument(
        "--host-steps", type=int, default=200, help="steps per host-overhead epoch (batch 512)"
    )
    parser.add_argument(
        "--host-only", action="store_true", help="measure only the host overhead per step"
    )
    # 15: on this shared 2-core machine the result's spread between two halves of 8
    # repetitions was 0.10 ms.
    parser.add_argument(
        "--host-reps", type=int, default=15, help="alternating repetitions of the host figures"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "throughput.json"))
    args = parser.parse_args()

    config = from_dict(yaml.safe_load(Path(args.config).read_text()))
    config.data.data_dir = args.data_dir
    config.trainer.progress_bar = False
    if args.quick:
        config.data.train_subset, args.reps, args.host_steps = 1024, 1, 20
    if args.train_subset:
        config.data.train_subset = args.train_subset
    if args.width:
        config.model.width = args.width
    if args.tile_train:
        config.data.tile_train = args.tile_train
    lr = 0.1
    device = torch.device(
        "cuda" if torch.cuda.is_available() and config.trainer.accelerator != "cpu" else "cpu"
    )
    host_reps = 1 if args.quick else args.host_reps
    if args.host_only:
        host = host_overhead(host_config(config, args.host_steps), lr, device, host_reps)
        host = {"device": describe(device), **host, "host_steps": args.host_steps}
        print(json.dumps(host, indent=2))
        write_text(args.out, json.dumps(host, indent=2) + "\n")
        return
    lightning_epoch(config, lr)  # warm-up: imports, allocator, cudnn autotuning
    plain_epoch(config, lr, device)
    tight_epoch(config, lr, device)
    light, fit, plain, tight = [], [], [], []
    for rep in range(args.reps):
        order = ("L", "P", "T") if rep % 2 == 0 else ("T", "P", "L")
        for which in order:
            if which == "L":
                epoch_s, fit_s, n = lightning_epoch(config, lr)
                light.append(n / epoch_s)
                fit.append(n / fit_s)
            elif which == "P":
                epoch_s, n = plain_epoch(config, lr, device)
                plain.append(n / epoch_s)
            else:
                epoch_s, n = tight_epoch(config, lr, device)
                tight.append(n / epoch_s)
        print(
            f"rep {rep + 1}: lightning {light[-1]:.0f} img/s (whole fit {fit[-1]:.0f}), "
            f"DataLoader loop {plain[-1]:.0f} img/s, tight loop {tight[-1]:.0f} img/s",
            flush=True,
        )
    host = host_overhead(host_config(config, args.host_steps), lr, device, host_reps)
    print(f"host overhead: {host}", flush=True)
    o1 = bo_overhead(1, 10)
    o1f = bo_overhead(1, 10, failures=2)
    o3 = bo_overhead(3, 30)
    result = {
        "device": describe(device),
        "config": args.config,
        "images": n,
        "reps": args.reps,
        "lightning_img_s": round(statistics.median(light), 1),
        "lightning_fit_img_s": round(statistics.median(fit), 1),
        "plain_img_s": round(statistics.median(plain), 1),
        "tight_loop_img_s": round(statistics.median(tight), 1),
        # The CPU baseline: Lightning against the same DataLoader-fed loop.
        "ratio": round(statistics.median(light) / statistics.median(plain), 3),
        # The GPU baseline: Lightning against the device-resident tight loop.
        "ratio_vs_tight": round(statistics.median(light) / statistics.median(tight), 3),
        "fit_ratio": round(statistics.median(fit) / statistics.median(plain), 3),
        # Lightning's time per step above the tight loop's, both with a model that costs
        # nothing, batch 512, device-resident data, augmentation, label smoothing, metric.
        **host,
        "host_steps": args.host_steps,
        "bo_overhead_s_1d": round(o1[0], 3),
        "bo_overhead_s_1d_with_failures": round(o1f[0], 3),
        # A step that explores: the acquisition's optimisation, then the exploration's.
        "bo_overhead_s_1d_exploring": round(o1[0] + o1[2], 3),
        "bo_overhead_s_1d_with_failures_exploring": round(o1f[0] + o1f[2], 3),
        # A gap step: the acquisition's optimisation, then the search for the hole.
        "bo_overhead_s_1d_gap": round(o1[0] + o1[3], 3),
        "bo_overhead_s_1d_with_failures_gap": round(o1f[0] + o1f[3], 3),
        "bo_figure_s_1d": round(o1[1], 3),
        "bo_overhead_s_3d": round(o3[0], 3),
        "bo_figure_s_3d": round(o3[1], 3),
    }
    print(json.dumps(result, indent=2))
    write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
