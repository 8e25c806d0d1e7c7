"""Episode windows for policy training: flat storage plus a precomputed index.

Sample ``i`` is (episode ``e``, current step ``t``) and holds::

    state       (To, Ds)  observations t-To+1 .. t          (edge-padded before the start)
    image       (To, H, W, 3) uint8                          (rgb datasets)
    qpos_hist   (Th, Dq)  joint positions t-Th+1 .. t        (edge-padded)
    prev_action (Th, A)   actions t-Th .. t-1                (zeros where before the start)
    prev_action_is_pad (Th,) bool
    action      (H, A)    actions t .. t+H-1                 (padded after the end, see below)
    action_is_pad (H,) bool

Past an episode's last action, ``end_padding`` decides what the chunk holds:

* ``hold``: zero motion on the arm dimensions and the last gripper command (the trailing
  ``gripper_dims`` entries) repeated. This is "stay where you are" for delta controllers
  (``pd_ee_delta_pos``, ``pd_joint_delta_pos``, ...), whose arm actions are increments.
* ``repeat``: the last action repeated. This is "stay where you are" for absolute controllers
  (``pd_joint_pos``), whose actions are targets; under a delta controller it would teach the
  policy to keep moving after the task is done.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .maniskill import Episode

END_PADDINGS = ("hold", "repeat")


def end_padding_for(control_mode: str, setting: str = "auto") -> str:
    """``hold`` for delta control modes, ``repeat`` for absolute ones (``setting`` wins unless auto)."""
    if setting != "auto":
        if setting not in END_PADDINGS:
            raise ValueError(f"end padding {setting!r} is not one of {['auto', *END_PADDINGS]}")
        return setting
    return "hold" if "delta" in control_mode else "repeat"


class PolicyWindows(Dataset):
    """All windows of a list of episodes. ``__getitems__`` builds a whole batch with numpy."""

    def __init__(self, episodes: list[Episode], n_obs_steps: int, n_hist: int, horizon: int,
                 use_images: bool = False, end_padding: str = "repeat", gripper_dims: int = 1,
                 use_aux: bool = False):
        if not episodes:
            raise ValueError("no episodes to build windows from")
        if end_padding not in END_PADDINGS:
            raise ValueError(f"end_padding={end_padding!r} is not one of {list(END_PADDINGS)}")
        self.To, self.Th, self.H = n_obs_steps, n_hist, horizon
        self.end_padding, self.gripper_dims = end_padding, int(gripper_dims)
        self.state = np.concatenate([e.state for e in episodes])
        self.qpos = np.concatenate([e.qpos for e in episodes])
        self.action = np.concatenate([e.action for e in episodes])
        self.image = np.concatenate([e.image for e in episodes]) if use_images else None
        if use_aux and any(e.aux is None for e in episodes):
            raise ValueError("use_aux: every episode needs its object positions (read_demos(aux_actor=...))")
        self.aux = np.concatenate([e.aux for e in episodes]) if use_aux else None  # (N_obs, 3)
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
        action = self.action[a0 + np.minimum(act_rel, T - 1)]  # (B, H, A), last action repeated
        if self.end_padding == "hold":
            arm = action.shape[-1] - self.gripper_dims
            action[..., :arm][act_pad] = 0.0  # no arm motion; the gripper command is kept
        batch = {
            "state": self.state[o0 + obs_rel],
            "qpos_hist": self.qpos[o0 + hist_rel],
            "prev_action": prev,
            "prev_action_is_pad": prev_pad,
            "action": action,
            "action_is_pad": act_pad,
        }
        if self.image is not None:
            batch["image"] = self.image[o0 + obs_rel]
        if self.aux is not None:
            batch["aux"] = self.aux[o0 + obs_rel]  # (B, To, 3)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def collate_batch(batch):
    """``collate_fn`` for loaders over :class:`PolicyWindows` (``__getitems__`` already batched)."""
    return batch
