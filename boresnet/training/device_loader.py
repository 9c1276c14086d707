"""A loader that keeps a whole (small) dataset on the accelerator and batches there.

KMNIST is 47 MB as float32: on a GPU, copying it once and slicing batches on the device
removes the host-to-device copy and the DataLoader's Python overhead from every step; on
the CPU the slicing alone removes the DataLoader's per-image fetch and collate.
Shuffling and sharding follow :class:`torch.utils.data.DistributedSampler` exactly (the
DataLoader path's sampler): a permutation seeded by ``seed + epoch``, padded by wrapping
around until every rank gets the same number of samples, every ``world_size``-th index
per rank. Equal counts matter: a rank with one batch more would issue a collective its
peers never join, and data-parallel training would hang.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of ``order``, padded like ``DistributedSampler`` (drop_last off).

    Every rank gets ``ceil(n / world_size)`` indices: the order is extended by wrapping
    around to a multiple of ``world_size`` first.
    """
    n = len(order)
    per_rank = -(-n // world_size)
    total = per_rank * world_size
    if total > n:
        reps = -(-total // n)
        order = order.repeat(reps)[:total]
    return order[rank:total:world_size]


class DeviceLoader:
    """Iterate over ``(x, y)`` batches sliced from tensors held on ``device``.

    Each ``iter()`` is one pass (epoch); under data parallelism each rank takes its
    padded share of the permutation, like a ``DistributedSampler``.

    Args:
        x: Inputs, first dimension the sample.
        y: Targets.
        batch_size: Samples per batch (the last batch may be smaller).
        device: Where the tensors live.
        seed: Seed of the per-pass permutation.
        shuffle: Permute each pass (training) or keep the order (evaluation).
        rank: This process's rank.
        world_size: Number of data-parallel processes.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        device: torch.device | str,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} != {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device, non_blocking=True)
        self.y = y.to(self.device, non_blocking=True)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def _indices(self) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        return shard(order, self.rank, self.world_size).to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._indices()
        self.epoch += 1
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.x[idx], self.y[idx]

    def __len__(self) -> int:
        per_rank = -(-len(self.x) // self.world_size)
        return (per_rank + self.batch_size - 1) // self.batch_size
