"""One way to build a policy: from a config and the metadata of the dataset it will learn from."""
from __future__ import annotations

import copy

import numpy as np

from .configuration import PolicyConfig
from .modeling import ActionFlowPolicy


def make_policy(config: PolicyConfig, dataset_meta, stats: dict[str, np.ndarray] | None = None) -> ActionFlowPolicy:
    """Build an :class:`ActionFlowPolicy` for a dataset.

    Args:
        config: the policy settings; a copy is filled with the dataset's dimensions
            (``state_dim``, ``qpos_dim``, ``action_dim``, camera, image size) and episode seeds.
        dataset_meta: a :class:`~a2a_temporal.data.maniskill.DemoMeta` (ManiSkill or LeRobot data).
        stats: raw arrays ``{"state": (N, Ds), "qpos": (N, Dq), "action": (N, A)}`` to fit the
            normaliser on (it is stored inside the weights); None leaves it unfitted (for loading).
    Returns:
        the policy (training mode).
    """
    c = copy.deepcopy(config)
    c.state_dim, c.qpos_dim, c.action_dim = dataset_meta.state_dim, dataset_meta.qpos_dim, dataset_meta.action_dim
    c.demo_seeds = list(dataset_meta.episode_seeds)
    if c.obs_mode == "rgb":
        c.image_size, c.camera = dataset_meta.image_size or 0, dataset_meta.camera or ""
    policy = ActionFlowPolicy(c)
    if stats is not None:
        policy.normalizer.fit(stats)
    return policy
