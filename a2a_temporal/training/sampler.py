"""Batch order as a pure function of (seed, step): resumable and identical across process counts."""
from __future__ import annotations

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Yields this process's share of every global batch from ``start_step`` to ``total_steps``.

    The global batch at step ``s`` is positions ``[s*G, (s+1)*G)`` of an endless stream made of
    per-epoch permutations (epoch ``e`` shuffled with seed ``seed + e``), ``G = batch_size *
    world_size``. Process ``rank`` takes slice ``[rank*batch_size, (rank+1)*batch_size)``. So a
    2-process run sees exactly the samples of a 1-process run with twice the batch, and a run
    resumed at step ``k`` continues where the uninterrupted run would be.
    """

    def __init__(self, num_samples: int, batch_size: int, total_steps: int, seed: int = 0,
                 start_step: int = 0, world_size: int = 1, rank: int = 0):
        if num_samples < 1:
            raise ValueError("cannot sample batches from an empty dataset")
        self.n, self.b, self.total = num_samples, batch_size, total_steps
        self.seed, self.start, self.world, self.rank = seed, start_step, world_size, rank
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed + epoch)
            self._perms = {epoch: torch.randperm(self.n, generator=g)}  # keep one epoch cached
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        first = step * self.b * self.world + self.rank * self.b
        out = []
        for p in range(first, first + self.b):
            out.append(int(self._perm(p // self.n)[p % self.n]))
        return out

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.total - self.start)
