"""The per-step cost of Lightning's SIGTERM broadcast under DDP (Lightning issue #21487).

Lightning 2.6's training loop broadcasts a one-element "SIGTERM received" tensor from
rank 0 at every step of a multi-process run and reads it on the host (``.item()``): a
collective and a host sync per step, with no public switch to turn it off (a pull
request adding ``broadcast_sigterm_every_n_steps`` is still open). This script measures
what that costs here: two processes of the ``gloo`` backend (``nccl`` with a GPU each,
where ``--backend nccl`` is given and there are two GPUs) run the same broadcast and read
as Lightning does, ``--steps`` times, and report the median milliseconds per step.

Usage::

    python benchmarks/sigterm_broadcast.py [--steps 2000] [--backend gloo] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from boresnet.atomic import write_text


def worker(rank: int, world: int, backend: str, steps: int, port: int, out: str) -> None:
    """One rank: ``steps`` broadcasts of the SIGTERM flag, each read on the host."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=rank, world_size=world)
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        flag = torch.tensor([0], device=device)  # what Lightning builds each step
        dist.broadcast(flag, src=0)
        if flag.item() == 1:  # ... and reads on the host: the sync
            break
        times.append(time.perf_counter() - start)
    if rank == 0:
        warm = times[len(times) // 10 :]  # the first tenth warms the connection up
        result = {
            "backend": backend,
            "world_size": world,
            "steps": len(warm),
            "median_ms_per_step": round(1000 * statistics.median(warm), 4),
            "p90_ms_per_step": round(1000 * sorted(warm)[int(0.9 * len(warm))], 4),
        }
        write_text(out, json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    dist.destroy_process_group()


def main() -> None:
    """Spawn the two ranks and write their result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    parser.add_argument("--port", type=int, default=29517)
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "results" / "sigterm_broadcast.json"),
    )
    args = parser.parse_args()
    mp.spawn(worker, args=(2, args.backend, args.steps, args.port, args.out), nprocs=2)


if __name__ == "__main__":
    main()
