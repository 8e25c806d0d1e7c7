"""Everything a policy run is made of, as one config, and the functions that assemble it.

``TrainPolicyConfig`` = dataset + policy + training loop + validation evaluation. Tools parse it
(``--config task.yaml --config recipe.yaml --section.key=value``) and call :func:`build_training`;
no tool imports another.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .data.maniskill import DemoMeta, check_matches, read_demos
from .data.windows import PolicyWindows
from .envs.seeds import VALIDATION_SEED_START, check_within
from .errors import ConfigError
from .heads.action import ActionFlowPolicy, PolicyConfig
from .heads.action.factory import make_policy
from .training import TrainConfig

DATASET_FORMATS = ("maniskill", "lerobot")


@dataclass
class DatasetConfig:
    """Where the demonstrations are and how to read them."""

    path: str = ""  # ManiSkill trajectory .h5 (with its .json), or a LeRobot v3 dataset folder
    format: str = "maniskill"  # maniskill | lerobot
    max_episodes: Optional[int] = None  # use only the first N demos
    # LeRobot datasets: which features hold the state, the action, the camera and the joint positions.
    state_key: str = "observation.state"
    action_key: str = "action"
    image_key: Optional[str] = None
    qpos_key: Optional[str] = None
    qpos_dims: Optional[int] = None  # else: the first qpos_dims entries of the state

    def __post_init__(self) -> None:
        if self.format not in DATASET_FORMATS:
            raise ValueError(f"dataset.format={self.format!r} is not one of {list(DATASET_FORMATS)}")


@dataclass
class PolicyEvalConfig:
    """In-training (validation) evaluation; it selects the ``best`` checkpoint."""

    episodes: int = 20  # 0 disables evaluation during training
    num_envs: int = 2
    num_inference_steps: Optional[int] = None  # sampler steps (None: the objective's default)
    method: Optional[str] = None  # solver / sampler (None: the objective's default)
    seed: int = VALIDATION_SEED_START  # first validation seed; all must stay in [500000, 1000000)
    max_episode_steps: Optional[int] = None  # None: the task's standard horizon
    threads: int = 1

    def __post_init__(self) -> None:
        if self.episodes < 0:
            raise ValueError(f"eval.episodes must be >= 0, got {self.episodes}")
        if self.num_inference_steps is not None and self.num_inference_steps < 1:
            raise ValueError(f"eval.num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if self.episodes:
            check_within("validation", self.seed, self.episodes, "eval.seed")


@dataclass
class TrainPolicyConfig:
    output_dir: str = ""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(best_metric="success_once"))
    eval: PolicyEvalConfig = field(default_factory=PolicyEvalConfig)


def load_demos(ds: DatasetConfig, policy: PolicyConfig):
    """``(meta, episodes)`` of the dataset, checked against what the policy config asks."""
    if not ds.path:
        raise ConfigError("dataset.path is empty: pass --dataset.path=<demos .h5 or LeRobot folder> "
                          "(see tools/generate_demos.py)")
    rgb = policy.obs_mode == "rgb"
    aux = policy.image_aux_actor if policy.uses_image_aux else None
    if aux and ds.format == "lerobot":
        raise ConfigError(f"policy.image_aux_weight={policy.image_aux_weight} needs the object positions of "
                          f"ManiSkill demos (env_states); dataset.format=lerobot has none: set it to 0")
    if ds.format == "lerobot":
        from .data.lerobot import read_lerobot

        meta, episodes = read_lerobot(ds.path, state_key=ds.state_key, action_key=ds.action_key,
                                      image_key=ds.image_key if rgb else None, qpos_key=ds.qpos_key,
                                      qpos_dims=ds.qpos_dims, max_episodes=ds.max_episodes)
    else:
        meta, episodes = read_demos(ds.path, ds.max_episodes, load_images=rgb, aux_actor=aux)
    check_matches(meta, policy.env_id, policy.control_mode, policy.obs_mode)
    return meta, episodes


def make_windows(episodes, config: PolicyConfig) -> PolicyWindows:
    """Training windows with the history / horizon / padding the policy config asks for."""
    return PolicyWindows(episodes, config.n_obs_steps, config.n_hist, config.horizon,
                         use_images=config.obs_mode == "rgb", end_padding=config.resolved_end_padding(),
                         gripper_dims=config.gripper_dims, use_aux=config.uses_image_aux)


def build_training(cfg: TrainPolicyConfig) -> tuple[DemoMeta, PolicyWindows, ActionFlowPolicy]:
    """Dataset metadata, training windows and a policy whose normaliser is fitted on them."""
    meta, episodes = load_demos(cfg.dataset, cfg.policy)
    data = make_windows(episodes, cfg.policy)
    stats = {"state": data.state, "qpos": data.qpos, "action": data.action}
    if data.aux is not None:
        stats["aux"] = data.aux
    policy = make_policy(cfg.policy, meta, stats)
    cfg.policy = policy.config  # the filled-in copy (dimensions, demo seeds) is what gets saved
    return meta, data, policy
