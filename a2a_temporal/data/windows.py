"""Episode windows for policy training: flat storage plus a precomputed index.

Sample ``i`` is (episode ``e``, current step ``t``) and holds::

    state       (To, Ds)  observations t-To+1 .. t          (edge-padded before the start)
    image       (To, H, W, 3) uint8                          (rgb datasets)
    qpos_hist   (Th, Dq)  joint positions t-Th+1 .. t        (edge-padded)
    prev_action (Th, A)   actions t-Th .. t-1                (zeros where before the start)
    prev_action_is_pad (Th,) bool
    action      (H, A)    actions t .. t+H-1                 (edge-padded after the end)
    action_is_pad (H,) bool
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .maniskill import Episode


class PolicyWindows(Dataset):
    """All windows of a list of episodes. ``__getitems__`` builds a whole batch with numpy."""

    def __init__(self, episodes: list[Episode], n_obs_steps: int, n_hist: int, horizon: int,
                 use_images: bool = False):
        if not episodes:
            raise ValueError("no episodes to build windows from")
        self.To, self.Th, self.H = n_obs_steps, n_hist, horizon
        self.state = np.concatenate([e.state for e in episodes])
        self.qpos = np.concatenate([e.qpos for e in episodes])
        self.action = np.concatenate([e.action for e in episodes])
        self.image = np.concatenate([e.image for e in episodes]) if use_images else None
        obs_start, act_start, lengths, steps = [], [], [], []
        o = a = 0
        for e in episodes:
            T = e.length
            obs_start.append(np.full(T, o))
            act_start.append(np.full(T, a))
            lengths.append(np.full(T, T))
            steps.append(np.arange(T))
            o += T + 1
            a += T
        self.obs_start = np.concatenate(obs_start)
        self.act_start = np.concatenate(act_start)
        self.length = np.concatenate(lengths)
        self.t = np.concatenate(steps)

    def __len__(self) -> int:
        return self.t.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}

    def __getitems__(self, idx) -> dict:
        idx = np.asarray(idx)
        t = self.t[idx][:, None]  # (B, 1)
        T = self.length[idx][:, None]
        o0, a0 = self.obs_start[idx][:, None], self.act_start[idx][:, None]
        obs_rel = np.clip(t + np.arange(-self.To + 1, 1), 0, None)  # (B, To)
        hist_rel = np.clip(t + np.arange(-self.Th + 1, 1), 0, None)  # (B, Th)
        prev_rel = t + np.arange(-self.Th, 0)  # (B, Th)
        prev_pad = prev_rel < 0
        act_rel = t + np.arange(self.H)  # (B, H)
        act_pad = act_rel > T - 1
        prev = self.action[a0 + np.clip(prev_rel, 0, None)]
        prev[prev_pad] = 0.0
        batch = {
            "state": self.state[o0 + obs_rel],
            "qpos_hist": self.qpos[o0 + hist_rel],
            "prev_action": prev,
            "prev_action_is_pad": prev_pad,
            "action": self.action[a0 + np.minimum(act_rel, T - 1)],
            "action_is_pad": act_pad,
        }
        if self.image is not None:
            batch["image"] = self.image[o0 + obs_rel]
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def collate_batch(batch):
    """``collate_fn`` for loaders over :class:`PolicyWindows` (``__getitems__`` already batched)."""
    return batch
