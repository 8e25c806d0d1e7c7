"""Closed-loop evaluation of a policy in ManiSkill over a vector of CPU environments.

Episodes get distinct seeds ``seed, seed+1, ...``; every episode runs to the task's horizon
(terminations ignored, as ManiSkill's baselines evaluate). Reported: success_once,
success_at_end, mean episode length (steps to first success, or the horizon), and the
per-call latency of the policy, timed around ``predict_action_chunk`` only, at batch 1
(steps served from the action queue are not inference calls and are not timed).
Each finished episode is appended to ``episodes.jsonl`` at once, so an interrupted
evaluation keeps everything it finished.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..data.maniskill import obs_to_frame
from ..data.video_io import write_video
from .maniskill import EVAL_MAX_EPISODE_STEPS, check_env_offline, make_env


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("a2a_temporal", "torch", "mani_skill", "sapien", "gymnasium", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _index(tree, i):
    if isinstance(tree, dict):
        return {k: _index(v, i) for k, v in tree.items()}
    return tree[i]


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def latency_stats(seconds: list[float]) -> dict:
    if not seconds:
        return {"calls": 0}
    ms = np.asarray(seconds) * 1000.0
    return {"calls": int(ms.size), "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min())}


def evaluate(policy, episodes: int = 100, steps: int | None = None, method: str | None = None, seed: int = 0,
             num_envs: int = 2, max_episode_steps: int | None = None, video_dir: str | Path | None = None,
             video_episodes: int = 2, out_json: str | Path | None = None, threads: int = 1,
             progress: bool = True, extra_info: dict | None = None) -> dict:
    """Run ``episodes`` evaluation episodes and return a summary.

    With ``out_json``, the summary is rewritten there (atomically, ``complete: false``) after
    every round and each finished episode is appended to ``<stem>.episodes.jsonl`` beside it.
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode
    from tqdm.auto import tqdm

    c = policy.config
    check_env_offline(c.env_id)
    horizon = max_episode_steps or EVAL_MAX_EPISODE_STEPS.get(c.env_id, 100)
    num_envs = max(1, min(num_envs, episodes))
    want_video = video_dir is not None and video_episodes > 0
    fn = partial(make_env, c.env_id, obs_mode=c.obs_mode, control_mode=c.control_mode,
                 render_mode="rgb_array" if want_video else None, max_episode_steps=horizon,
                 image_size=c.image_size or None, cpu_wrapper=True)
    envs = (gym.vector.SyncVectorEnv([fn], autoreset_mode=AutoresetMode.DISABLED) if num_envs == 1 else
            gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=AutoresetMode.DISABLED, context="spawn"))
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    policy.eval()
    out = Path(out_json) if out_json is not None else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        episodes_log = out.with_name(out.stem + ".episodes.jsonl")
        episodes_log.write_text("")
    records, latencies = [], []
    seeds = [seed + i for i in range(episodes)]
    bar = tqdm(total=episodes, desc=f"eval {c.env_id}", disable=not progress, dynamic_ncols=True)
    t_start = time.perf_counter()
    from ..heads.action.actor import ChunkActor

    try:
        for start in range(0, episodes, num_envs):
            active = list(range(min(num_envs, episodes - start)))
            round_seeds = [seeds[start + i] if i in active else seeds[start] + 10_000_000 for i in range(num_envs)]
            obs, _ = envs.reset(seed=round_seeds)
            actors = [ChunkActor(c.n_obs_steps, c.n_hist, c.n_action_steps, c.action_dim) for _ in range(num_envs)]
            first_success = [None] * num_envs
            success = np.zeros(num_envs, dtype=bool)
            filmed = [i for i in active if start + i < video_episodes] if want_video else []
            frames = {i: [] for i in filmed}
            for t in range(horizon):
                if filmed:
                    shots = envs.render() if num_envs == 1 else envs.call("render")
                    for i in filmed:
                        frames[i].append(np.asarray(shots[i]).reshape(-1, *np.asarray(shots[i]).shape[-3:])[0])
                actions = np.zeros((num_envs, c.action_dim), dtype=np.float32)
                for i in active:
                    actor = actors[i]
                    actor.observe(obs_to_frame(_index(obs, i), c.obs_mode, c.qpos_dim, c.camera or None))
                    if actor.needs_plan():
                        batch = actor.batch()
                        t0 = time.perf_counter()
                        chunk = policy.predict_action_chunk(batch, steps=steps, method=method)
                        latencies.append(time.perf_counter() - t0)
                        actor.plan(chunk[0].cpu().numpy())
                    actions[i] = actor.act()
                obs, _, _, _, info = envs.step(actions)
                success = np.asarray(info["success"], dtype=bool).reshape(num_envs)
                for i in active:
                    if success[i] and first_success[i] is None:
                        first_success[i] = t + 1
            for i in active:
                rec = {"episode": start + i, "seed": seeds[start + i],
                       "success_once": first_success[i] is not None, "success_at_end": bool(success[i]),
                       "episode_length": first_success[i] or horizon}
                if i in frames:
                    vdir = Path(video_dir)
                    rec["video"] = str(write_video(vdir / f"episode_{start + i:03d}_seed{seeds[start + i]}.mp4",
                                                   np.stack(frames[i]), fps=20))
                records.append(rec)
                if out is not None:
                    with open(episodes_log, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                bar.update(1)
            bar.set_postfix(success=f"{np.mean([r['success_once'] for r in records]):.2f}")
            if out is not None:
                write_json_atomic(out, _summary(records, latencies, policy, steps, method,
                                                                 seeds, horizon, num_envs, threads, t_start,
                                                                 extra_info, complete=False))
    finally:
        bar.close()
        envs.close()
        torch.set_num_threads(prev_threads)
    summary = _summary(records, latencies, policy, steps, method, seeds, horizon, num_envs, threads, t_start,
                       extra_info, complete=True)
    if out is not None:
        write_json_atomic(out, summary)
    return summary


def _summary(records, latencies, policy, steps, method, seeds, horizon, num_envs, threads, t_start,
             extra_info, complete: bool) -> dict:
    from ..config import to_dict

    n = len(records)
    obj = policy.objective
    res = {
        "env_id": policy.config.env_id,
        "episodes": n,
        "complete": complete,
        "success_once": float(np.mean([r["success_once"] for r in records])) if n else math.nan,
        "success_at_end": float(np.mean([r["success_at_end"] for r in records])) if n else math.nan,
        "mean_episode_length": float(np.mean([r["episode_length"] for r in records])) if n else math.nan,
        "objective": obj.name,
        "steps": steps or obj.default_steps,
        "method": method or getattr(obj, "default_method", None),
        "model_calls_per_chunk": obj.model_calls(steps, method),
        "latency": {**latency_stats(latencies), "batch_size": 1, "threads": threads,
                    "device": str(policy.normalizer.fitted.device)},
        "horizon": horizon,
        "num_envs": num_envs,
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "seeds": seeds[:n],
        "per_episode": records,
        "policy_config": to_dict(policy.config),
        "versions": versions(),
    }
    if extra_info:
        res.update(extra_info)
    return res
