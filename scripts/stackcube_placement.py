#!/usr/bin/env python
"""Where a StackCube policy lets go of cube A: the horizontal offset from cube B's centre and the
height of cube A at the step the gripper command turns from close to open while cube A is lifted,
for the episodes that succeed and for those that fail.

    .venv/bin/python scripts/stackcube_placement.py --checkpoint runs/policy/stackcube/a2a/seed0/checkpoints/best \
        [--episodes 100] [--seed 500000] [--n-action-steps N] [--steps 1] [--json runs/diag/placement.json]

Validation seeds (500,000+) by default, the policy's own demo seeds are refused as in the evaluator;
the policy is called as the evaluator calls it (one environment, ``n_action_steps`` actions per call).
Writes every episode's record (release step, offset, height, success) and a summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CUBE_HALF = 0.02  # StackCube-v1's cube half size (m)


def first_release(trace: list[dict]) -> dict | None:
    """The first step after cube A was grasped at which the gripper command turns open (> 0 after
    <= 0) while cube A is above the table (lifted by more than a quarter of a cube), or None."""
    grasped = False
    for i, (prev, cur) in enumerate(zip(trace, trace[1:])):
        grasped = grasped or prev["grasped"]
        if grasped and prev["gripper"] <= 0 < cur["gripper"] and cur["z_a"] > CUBE_HALF * 1.5:
            return {"step": i + 2, **cur}  # 1-based step of the opening command
    return None


def summarise(records: list[dict]) -> dict:
    out = {}
    for name, ok in (("success", True), ("failure", False)):
        eps = [r for r in records if r["success_once"] == ok]
        rel = [r["release"] for r in eps if r["release"] is not None]
        xy = sorted(r["xy_offset"] for r in rel)
        out[name] = {"episodes": len(eps), "released_lifted": len(rel),
                     "xy_offset_median_m": float(np.median(xy)) if xy else None,
                     "xy_offset_min_m": xy[0] if xy else None, "xy_offset_max_m": xy[-1] if xy else None,
                     "height_median_m": float(np.median([r["z_a"] for r in rel])) if rel else None}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=500_000)
    p.add_argument("--steps", type=int, default=1, help="inference steps per call")
    p.add_argument("--n-action-steps", type=int, default=None, help="actions per call (default: the policy's)")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="runs/diag/stackcube_placement.json")
    a = p.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from a2a_temporal.data.history import ChunkActor, stack_batches
    from a2a_temporal.data.maniskill import obs_to_frame
    from a2a_temporal.envs.evaluate import check_seeds
    from a2a_temporal.envs.maniskill import make_env
    from a2a_temporal.errors import ConfigError
    from a2a_temporal.heads.action import ActionFlowPolicy
    from a2a_temporal.training.checkpoint import resolve_pretrained
    from a2a_temporal.utils import write_json_atomic

    torch.set_num_threads(a.threads)
    policy = ActionFlowPolicy.from_pretrained(resolve_pretrained(a.checkpoint))
    policy.eval()
    c = policy.config
    if c.env_id != "StackCube-v1":
        print(f"error: {a.checkpoint}: a policy for {c.env_id}, this diagnostic reads StackCube-v1's cubes",
              file=sys.stderr)
        return 2
    n_exec = a.n_action_steps or c.n_action_steps
    seeds = [a.seed + i for i in range(a.episodes)]
    try:
        check_seeds(policy, seeds)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env = make_env(c.env_id, cpu_wrapper=True, obs_mode=c.obs_mode, control_mode=c.control_mode,
                   max_episode_steps=a.horizon)
    torch.manual_seed(a.seed)
    records = []
    for seed in tqdm(seeds, desc="episodes", dynamic_ncols=True):
        obs, _ = env.reset(seed=seed)
        actor = ChunkActor(c.n_obs_steps, c.n_hist, n_exec, c.action_dim, None)
        trace, success_once = [], False
        for _ in range(a.horizon):
            actor.observe(obs_to_frame(obs, c.obs_mode, c.qpos_dim, None))
            if actor.needs_plan():
                with torch.no_grad():
                    actor.plan(policy.predict_action_chunk(stack_batches([actor.batch()]), a.steps, None).cpu().numpy()[0])
            action = actor.act()
            obs, _, _, _, info = env.step(action)
            u = env.unwrapped
            pa, pb = u.cubeA.pose.p[0].numpy(), u.cubeB.pose.p[0].numpy()
            trace.append({"gripper": float(action[-1]), "z_a": float(pa[2]),
                          "xy_offset": float(np.linalg.norm(pa[:2] - pb[:2])), "grasped": bool(info["is_cubeA_grasped"])})
            success_once = success_once or bool(info["success"])
        rel = first_release(trace)
        records.append({"seed": seed, "success_once": success_once,
                        "release": rel})
    env.close()
    summary = summarise(records)
    result = {"checkpoint": a.checkpoint, "seeds": [seeds[0], seeds[-1]], "n_action_steps": n_exec, "steps": a.steps,
              "summary": summary, "episodes": records,
              "command": " ".join(["python", "scripts/stackcube_placement.py", *(sys.argv[1:] if argv is None else argv)])}
    write_json_atomic(a.json, result)
    for name, s in summary.items():
        if s["released_lifted"]:
            print(f"{name}: {s['episodes']} episodes, {s['released_lifted']} released cube A lifted; offset from "
                  f"cube B's centre at release median {100 * s['xy_offset_median_m']:.1f} cm "
                  f"(range {100 * s['xy_offset_min_m']:.1f}-{100 * s['xy_offset_max_m']:.1f}), "
                  f"height {100 * s['height_median_m']:.1f} cm")
        else:
            print(f"{name}: {s['episodes']} episodes, none released cube A lifted")
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
