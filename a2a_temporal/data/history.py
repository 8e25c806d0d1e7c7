"""Closed-loop bookkeeping shared by a policy's ``select_action`` and the evaluator.

Keeps the observation / proprio / previous-action histories of one environment and a queue of
planned actions; asks for a new chunk only when the queue is empty (or, with temporal
ensembling, every ``n_action_steps`` steps, executing a weighted mean of the overlapping chunks). It builds exactly the batch
keys that :mod:`a2a_temporal.data.windows` builds for training, so the live input and the
training input cannot disagree. It lives in ``data/`` so the evaluator (``envs/``) needs no
import from ``heads/``.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch


class ChunkActor:
    """History and action queue of a single environment (batch 1).

    ``temporal_ensemble``: None (default) executes the first ``n_action_steps`` actions of each
    chunk, then plans again. A number ``m`` turns on temporal ensembling (ACT, Zhao et al. 2023):
    a chunk is still planned every ``n_action_steps`` steps (ACT plans every step: 1), but every
    chunk stays live for its whole horizon and the executed action is the weighted mean of the
    live chunks' predictions for the current step, weight ``exp(-m * i)`` with ``i = 0`` the oldest
    chunk (ACT's convention: m > 0 trusts older plans more, m = 0 is the plain mean, m < 0 favours
    the newest).
    """

    def __init__(self, n_obs_steps: int, n_hist: int, n_action_steps: int, action_dim: int,
                 temporal_ensemble: float | None = None):
        self.To, self.Th, self.n_act, self.A = n_obs_steps, n_hist, n_action_steps, action_dim
        if temporal_ensemble is not None and not np.isfinite(temporal_ensemble):
            raise ValueError(f"temporal_ensemble={temporal_ensemble!r}: expected a finite number or None")
        self.ensemble = temporal_ensemble
        self.reset()

    def reset(self) -> None:
        self.frames: deque = deque(maxlen=self.To)
        self.qpos: deque = deque(maxlen=self.Th)
        self.prev: deque = deque([np.zeros(self.A, np.float32)] * self.Th, maxlen=self.Th)
        self.prev_pad: deque = deque([True] * self.Th, maxlen=self.Th)
        self.queue: deque = deque()
        self.t = 0  # actions executed this episode (the clock of temporal ensembling)
        self.live: list[tuple[int, np.ndarray]] = []  # (step planned at, chunk (H, A)), oldest first

    def observe(self, frame: dict) -> None:
        """Add one observation frame (``state``, ``qpos`` and optionally ``image``)."""
        if not self.frames:  # edge padding at the start of an episode
            self.frames.extend([frame] * self.To)
            self.qpos.extend([frame["qpos"]] * self.Th)
        else:
            self.frames.append(frame)
            self.qpos.append(frame["qpos"])

    def needs_plan(self) -> bool:
        if self.ensemble is not None:
            return self.t % self.n_act == 0
        return not self.queue

    def batch(self) -> dict:
        """The current histories as a batch of one (the keys the policy reads):
        ``state (1, To, Ds)``, ``qpos_hist (1, Th, Dq)``, ``prev_action (1, Th, A)``,
        ``prev_action_is_pad (1, Th)`` [, ``image (1, To, H, W, 3)``]."""
        b = {"state": np.stack([f["state"] for f in self.frames])[None],
             "qpos_hist": np.stack(self.qpos)[None],
             "prev_action": np.stack(self.prev)[None],
             "prev_action_is_pad": np.array(self.prev_pad)[None]}
        if "image" in self.frames[0]:
            b["image"] = np.stack([f["image"] for f in self.frames])[None]
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in b.items()}

    def plan(self, chunk: np.ndarray) -> None:
        """Queue the first ``n_action_steps`` actions of a predicted chunk ``(H, A)`` (with temporal
        ensembling: keep the whole chunk live, planned at the current step)."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if self.ensemble is not None:
            self.live.append((self.t, chunk))
        else:
            self.queue.extend(chunk[: self.n_act])

    def act(self) -> np.ndarray:
        if self.ensemble is not None:
            self.live = [(t0, c) for t0, c in self.live if self.t - t0 < len(c)]  # drop expired chunks
            w = np.exp(-self.ensemble * np.arange(len(self.live)))
            a = np.tensordot(w / w.sum(), np.stack([c[self.t - t0] for t0, c in self.live]), axes=1).astype(np.float32)
        else:
            a = self.queue.popleft()
        self.t += 1
        self.prev.append(a)
        self.prev_pad.append(False)
        return a


def stack_batches(batches: list[dict]) -> dict:
    """Concatenate batches of the same keys along the batch axis (N batch-1 histories -> one call)."""
    return {k: torch.cat([b[k] for b in batches], dim=0) for k in batches[0]}
