#!/usr/bin/env python
"""Train a robot policy (A2A or any baseline objective) on ManiSkill demonstrations.

    python tools/train_policy.py --config configs/policy/pushcube_state.yaml --output-dir runs/push \
        [--dataset.path=...] [--train.steps=...] [--policy.objective.name=flow]

Several ``--config`` files may be given: later files override earlier ones (a task config,
then an objective recipe from configs/policy/recipes/), dotted overrides come last.

Evaluates in the simulator every ``train.eval_every`` iterations (and at the end) on the
*validation* seed range (500,000+, disjoint from the demo seeds and from the test seeds that
tools/eval_policy.py uses) and keeps the ``last`` and ``best`` (highest validation
success_once; ties go to the later checkpoint) checkpoints under OUTPUT_DIR/checkpoints/.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from a2a_temporal.cli import run_cli
from a2a_temporal.config import parse_cli, to_dict
from a2a_temporal.data.maniskill import check_matches, read_demos
from a2a_temporal.data.windows import PolicyWindows, collate_batch
from a2a_temporal.envs.seeds import VALIDATION_SEED_START, check_within
from a2a_temporal.errors import ConfigError
from a2a_temporal.heads.action import ActionFlowPolicy, PolicyConfig
from a2a_temporal.training import TrainConfig, Trainer


@dataclass
class DatasetConfig:
    path: str = ""  # a ManiSkill trajectory .h5 (with its .json), e.g. from tools/generate_demos.py
    max_episodes: Optional[int] = None  # use only the first N demos


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


def build(cfg: TrainPolicyConfig):
    """Dataset, windows and an (unfitted-to-be-fitted) policy for ``cfg``."""
    if not cfg.dataset.path:
        raise ConfigError("dataset.path is empty: pass --dataset.path=<demos .h5> (see tools/generate_demos.py)")
    p = cfg.policy
    meta, episodes = read_demos(cfg.dataset.path, cfg.dataset.max_episodes, load_images=p.obs_mode == "rgb")
    check_matches(meta, p.env_id, p.control_mode, p.obs_mode)
    p.state_dim, p.qpos_dim, p.action_dim = meta.state_dim, meta.qpos_dim, meta.action_dim
    p.demo_seeds = list(meta.episode_seeds)
    if p.obs_mode == "rgb":
        p.image_size, p.camera = meta.image_size, meta.camera
    data = PolicyWindows(episodes, p.n_obs_steps, p.n_hist, p.horizon, use_images=p.obs_mode == "rgb",
                         end_padding=p.resolved_end_padding(), gripper_dims=p.gripper_dims)
    policy = ActionFlowPolicy(p)
    policy.normalizer.fit({"state": data.state, "qpos": data.qpos, "action": data.action})
    return meta, data, policy


def make_eval_fn(ev: PolicyEvalConfig):
    """Closed-loop evaluation in the simulator during training (None when disabled)."""
    if ev.episodes <= 0:
        return None
    from a2a_temporal.envs.evaluate import evaluate

    def eval_fn(model, step):
        res = evaluate(model, episodes=ev.episodes, num_inference_steps=ev.num_inference_steps, method=ev.method,
                       seed=ev.seed, num_envs=ev.num_envs, max_episode_steps=ev.max_episode_steps,
                       threads=ev.threads, progress=False)
        print(f"\n[eval @ {step}] success_once={res['success_once']:.2f} "
              f"success_at_end={res['success_at_end']:.2f} p50={res['latency']['p50_ms']:.2f} ms", flush=True)
        return {"success_once": res["success_once"], "success_at_end": res["success_at_end"],
                "latency_p50_ms": res["latency"]["p50_ms"]}

    return eval_fn


@run_cli
def main(argv=None) -> dict:
    cfg = parse_cli(TrainPolicyConfig, argv)
    if not cfg.output_dir:
        raise ConfigError("no output directory: pass --output-dir DIR")
    meta, data, policy = build(cfg)
    print(f"dataset: {meta.path} ({meta.num_episodes} demos, {len(data)} windows, {meta.env_id}, "
          f"obs={meta.obs_mode}, control={meta.control_mode}); policy: {cfg.policy.objective.name}, "
          f"{sum(p.numel() for p in policy.parameters()) / 1e6:.2f}M parameters", flush=True)
    eval_fn = make_eval_fn(cfg.eval)
    trainer = Trainer(policy, data, cfg.train, cfg.output_dir, eval_fn=eval_fn, collate_fn=collate_batch,
                      run_config=to_dict(cfg), pretrained_extra={"dataset": meta.path})
    t0 = time.perf_counter()
    summary = trainer.fit()
    summary.update({"dataset": meta.path, "num_demos": meta.num_episodes, "objective": cfg.policy.objective.name,
                    "end_padding": cfg.policy.resolved_end_padding(), "seed": cfg.train.seed,
                    "validation_seeds": [cfg.eval.seed, cfg.eval.seed + cfg.eval.episodes - 1] if cfg.eval.episodes else None,
                    "total_wall_s": round(time.perf_counter() - t0, 1)})
    out = Path(cfg.output_dir)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("steps", "train_time_s", "train_cpu_s", "eval_time_s", "best")
                      if k in summary}))
    print(f"checkpoints: {out / 'checkpoints'} (last, best)")
    return summary


if __name__ == "__main__":
    main()
