#!/usr/bin/env python
"""Evaluate a trained policy in the ManiSkill simulator.

    python tools/eval_policy.py --checkpoint runs/push/checkpoints/best --episodes 100 --steps 1 \
        --json runs/push/eval_1step.json [--seed 0] [--num-envs 2] [--video-dir runs/push/videos]

Reports success_once, success_at_end, mean episode length and the per-inference-call latency
(p50/p95, batch 1, timed around the model call only). Finished episodes are appended to
``<json stem>.episodes.jsonl`` as they finish; the JSON file holds config, seeds and versions.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from a2a_temporal.cli import run_cli
from a2a_temporal.envs.evaluate import evaluate
from a2a_temporal.heads.action import ActionFlowPolicy
from a2a_temporal.training.checkpoint import resolve_pretrained


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="pretrained_model dir, a checkpoint step dir or a run dir")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="ODE / sampler steps (default: the objective's)")
    p.add_argument("--method", default=None, choices=["euler", "midpoint", "heun"])
    p.add_argument("--json", default=None, help="where to write eval_info (default <checkpoint>/eval_info.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--max-episode-steps", type=int, default=None)
    p.add_argument("--video-dir", default=None)
    p.add_argument("--video-episodes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the policy (latency: 1)")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> dict:
    a = parse(argv)
    ckpt = resolve_pretrained(a.checkpoint)
    policy = ActionFlowPolicy.from_pretrained(ckpt)
    json_path = Path(a.json) if a.json else ckpt / "eval_info.json"
    res = evaluate(policy, episodes=a.episodes, steps=a.steps, method=a.method, seed=a.seed, num_envs=a.num_envs,
                   max_episode_steps=a.max_episode_steps, video_dir=a.video_dir, video_episodes=a.video_episodes,
                   out_json=json_path, threads=a.threads, progress=not a.quiet,
                   extra_info={"checkpoint": str(ckpt)})
    lat = res["latency"]
    print(json.dumps({"env_id": res["env_id"], "objective": res["objective"], "steps": res["steps"],
                      "episodes": res["episodes"], "success_once": res["success_once"],
                      "success_at_end": res["success_at_end"], "mean_episode_length": res["mean_episode_length"],
                      "latency_p50_ms": round(lat.get("p50_ms", float("nan")), 3),
                      "latency_p95_ms": round(lat.get("p95_ms", float("nan")), 3)}))
    print(f"wrote {json_path}")
    return res


if __name__ == "__main__":
    main()
