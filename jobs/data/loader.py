"""Batches from an in-memory SampleSet, with a DistributedSampler-style split across workers.

Each batch is one fancy-index gather per array (SampleSet.to_batch), never a Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch import Tensor

from .samples import SampleSet


def worker_indices(
    n: int,
    shuffle: bool,
    seed: int,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> np.ndarray:
    """The sample indices worker `rank` of `world_size` visits this epoch, in order. int64 (n_rank,).

    As torch's DistributedSampler: one permutation of all n (seeded by seed and epoch, the same on every
    worker), made divisible by world_size by repeating its head (or cutting its tail when drop_last),
    then every world_size-th index from `rank`. So the workers' parts are disjoint (up to the repeats)
    and of equal size, which keeps collective ops in step.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"rank/world_size: want 0 <= rank < world_size, got rank={rank} world_size={world_size}"
        )
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    if world_size > 1:
        if drop_last:
            order = order[: n - n % world_size]
        elif n % world_size:
            extra = world_size - n % world_size
            order = np.concatenate([order, np.resize(order, extra)]) if n else order
    return order[rank::world_size]


def iterate_batches(
    samples: SampleSet,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    epoch: int = 0,
) -> Iterator[dict[str, Tensor]]:
    """Yield model batches (see SampleSet.to_batch: "image" (B, C, H, W) float in [0, 1], "label" (B,), ...).

    shuffle/seed/epoch: a fresh order per epoch, identical for the same (seed, epoch).
    rank/world_size: this worker's part only (worker_indices). drop_last: skip a final short batch (and,
    with several workers, the rows that would need repeating).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: want >= 1, got {batch_size}")
    order = worker_indices(len(samples), shuffle, seed, epoch, rank, world_size, drop_last)
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        yield samples.to_batch(order[start : start + batch_size])


def num_batches(n: int, batch_size: int, drop_last: bool = False, world_size: int = 1) -> int:
    """How many batches iterate_batches yields per worker for n samples."""
    per_worker = (n // world_size) if drop_last else -(-n // world_size)
    return per_worker // batch_size if drop_last else -(-per_worker // batch_size)
