"""Train a robot policy (A2A or any baseline objective) on ManiSkill demonstrations.

    python tools/train_policy.py --config configs/policy/pushcube_state.yaml --output-dir runs/push \
        [--dataset.path=...] [--train.iterations=...] [--policy.objective.name=flow]

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
from pathlib import Path

from a2a_temporal.cli import run_cli
from a2a_temporal.config import parse_cli, to_dict
from a2a_temporal.data.windows import collate_batch
from a2a_temporal.errors import ConfigError
from a2a_temporal.policy_setup import PolicyEvalConfig, TrainPolicyConfig, build_training
from a2a_temporal.training import Trainer, seed_init
from a2a_temporal.utils import write_json_atomic


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
    seed_init(cfg.train.seed)
    meta, data, policy = build_training(cfg)
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
    write_json_atomic(out / "train_summary.json", summary)
    print(json.dumps({k: summary[k] for k in ("iterations", "train_time_s", "train_cpu_s", "eval_time_s", "best")
                      if k in summary}))
    print(f"checkpoints: {out / 'checkpoints'} (last, best)")
    return summary


if __name__ == "__main__":
    main()
