"""Closed-loop evaluation of a policy in ManiSkill over a vector of CPU environments.

Episodes get distinct seeds ``seed, seed+1, ...``; a seed that the policy's training demos were
planned from is refused (see :mod:`a2a_temporal.envs.seeds` for the demo / validation / test
ranges). Every episode runs to the evaluation horizon (terminations ignored, as ManiSkill's
baselines evaluate; the horizon defaults to ManiSkill's Diffusion Policy settings, recorded
beside the environment's registered one). Reported: success_once, success_at_end (each with
a Wilson 95 % interval), mean episode length (steps to first success, or the horizon), and the
per-call latency of the policy, timed around ``predict_action_chunk`` only, at batch 1
(steps served from the action queue are not inference calls and are not timed).
The policy's own noise is seeded from the first episode seed, so rerunning an evaluation
reproduces it. An action with NaN or inf is a policy failure, not an evaluator crash: it is
executed as zero motion and counted (``nonfinite_action_steps``, per episode and in total).
Where the task reports sub-goals in its ``info`` (boolean flags such as StackCube's
``is_cubeA_grasped`` and ``is_cubeA_on_cubeB``), each episode records which of them it ever
reached (``stages_reached``) and which held at the last step (``stages_at_end``), and the summary
their rates, so a failure can be placed (never grasped, grasped but never placed, placed but
not released). Flags such as ``is_robot_static`` hold at reset, so only their end value says much.
Each finished episode is appended to ``episodes.jsonl`` at once, so an interrupted
evaluation keeps everything it finished.

With ``suite`` / ``level`` a fixed, seeded robustness perturbation (:mod:`a2a_temporal.envs.perturb`)
is applied inside every environment process; the summary records ``suite``, ``level`` and
``suite_spec``, and each episode record its ``perturbation`` (what was applied, where and when).
"""
from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..data.history import ChunkActor, stack_batches
from ..data.maniskill import obs_to_frame
from ..data.video_io import write_video
from ..errors import ConfigError
from ..flow.objective import check_method, check_steps
from ..metrics.stats import wilson_interval
from ..utils import versions, write_json_atomic
from .maniskill import EVAL_MAX_EPISODE_STEPS, check_env_offline, make_env, registered_max_episode_steps
from .perturb import check_suite, describe, direction_breakdown, make_perturbed_env, push_outcomes
from .seeds import TEST_SEED_START, split_of


def check_seeds(policy, seeds: list[int], allow_demo_seeds: bool = False) -> None:
    """Refuse evaluation seeds that are training-demo seeds of ``policy`` (one-line error)."""
    demo = set(getattr(policy.config, "demo_seeds", None) or [])
    if allow_demo_seeds or not demo:
        return
    clash = sorted(demo.intersection(seeds))
    if clash:
        raise ConfigError(
            f"evaluation seed {clash[0]} is one of this policy's training-demo seeds ({len(clash)} of the "
            f"{len(seeds)} requested seeds are); evaluate on held-out seeds (test seeds start at "
            f"{TEST_SEED_START}: --seed {TEST_SEED_START}) or pass --allow-demo-seeds for a deliberate replay check")


def _index(tree, i):
    if isinstance(tree, dict):
        return {k: _index(v, i) for k, v in tree.items()}
    return tree[i]


STAGE_SKIP = ("success", "fail")


def stage_flags(info: dict, num_envs: int) -> dict[str, np.ndarray]:
    """The task's boolean sub-goal flags in one vector-env step's ``info``: each ``(num_envs,)``
    bool array other than success / fail (gymnasium's ``_key`` masks are skipped)."""
    out = {}
    for k, v in info.items():
        if k.startswith("_") or k in STAGE_SKIP:
            continue
        a = np.asarray(v)
        if a.dtype == bool and a.shape == (num_envs,):
            out[k] = a
    return out


def stage_rates(records: list[dict], field: str = "stages_reached") -> dict[str, float]:
    """Fraction of the episodes whose ``field`` (stages_reached / stages_at_end) holds each flag."""
    keys = sorted({k for r in records for k in r.get(field, {})})
    return {k: sum(bool(r.get(field, {}).get(k)) for r in records) / len(records) for k in keys}


def latency_stats(seconds: list[float]) -> dict:
    if not seconds:
        return {"calls": 0}
    ms = np.asarray(seconds) * 1000.0
    return {"calls": int(ms.size), "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min())}


def evaluate(policy, episodes: int = 100, num_inference_steps: int | None = None, method: str | None = None,
             seed: int = TEST_SEED_START, num_envs: int = 2, max_episode_steps: int | None = None,
             video_dir: str | Path | None = None, video_episodes: int = 2, out_json: str | Path | None = None,
             threads: int = 1, progress: bool = True, extra_info: dict | None = None,
             allow_demo_seeds: bool = False, batched: bool = True, suite: str | None = None,
             level: float | int | None = None, sim_backend: str = "cpu", n_action_steps: int | None = None,
             temporal_ensemble: float | None | str = "config") -> dict:
    """Run ``episodes`` evaluation episodes on seeds ``seed, seed+1, ...`` and return a summary.

    ``policy`` needs only ``config`` (env_id, obs_mode, control_mode, n_obs_steps, n_hist,
    n_action_steps, action_dim, qpos_dim, demo_seeds), ``objective`` and
    ``predict_action_chunk(batch, num_inference_steps, method)``. With ``batched`` (default) the
    environments that need a new chunk at a control step are served by *one* policy call on
    their stacked histories; ``batched=False`` makes one batch-1 call per environment. With
    ``out_json``, the summary is rewritten there (atomically, ``complete: false``) after every
    round and each finished episode is appended to ``<stem>.episodes.jsonl`` beside it.
    ``suite`` / ``level`` select a robustness perturbation (:mod:`a2a_temporal.envs.perturb`;
    an unknown suite or level, or one the task / observation mode cannot take, is a one-line
    ConfigError before any environment starts). ``sim_backend``: ``cpu`` (one CPU-simulated
    environment per process, gymnasium's AsyncVectorEnv) or ``gpu`` (ManiSkill's own batched
    GPU simulation, ``physx_cuda``, all environments in this process; needs CUDA).
    ``n_action_steps``: actions of each predicted chunk executed before the next policy call
    (default: the policy's training setting; 1 re-plans at every control step).
    ``temporal_ensemble``: ACT's temporal ensembling weight ``m`` (:class:`ChunkActor`), None for
    off; default ``"config"``: the policy's own ``config.temporal_ensemble`` (None unless set).
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode
    from tqdm.auto import tqdm

    c = policy.config
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    try:
        check_steps(num_inference_steps, "num_inference_steps")
        check_method(policy.objective.name, method, "method")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    n_exec = c.n_action_steps if n_action_steps is None else n_action_steps
    if not 1 <= n_exec <= c.horizon:
        raise ConfigError(f"n_action_steps={n_exec} must lie in [1, the policy's chunk horizon {c.horizon}]")
    ensemble = getattr(c, "temporal_ensemble", None) if temporal_ensemble == "config" else temporal_ensemble
    if ensemble is not None and not (isinstance(ensemble, (int, float)) and np.isfinite(ensemble)):
        raise ConfigError(f"temporal_ensemble={ensemble!r}: expected a finite number (ACT's m) or None")
    seeds = [seed + i for i in range(episodes)]
    check_seeds(policy, seeds, allow_demo_seeds)
    if suite is None and level is not None:
        raise ConfigError(f"level {level!r} given without a robustness suite; pass suite= as well")
    if suite is not None:
        suite, level = check_suite(suite, level, c.env_id, c.obs_mode)
    check_env_offline(c.env_id)
    horizon = max_episode_steps or EVAL_MAX_EPISODE_STEPS.get(c.env_id, 100)
    num_envs = max(1, min(num_envs, episodes))
    want_video = video_dir is not None and video_episodes > 0
    if sim_backend not in SIM_BACKENDS:
        raise ConfigError(f"sim_backend={sim_backend!r} is not one of {list(SIM_BACKENDS)}")
    if sim_backend == "gpu":
        if not torch.cuda.is_available():
            raise ConfigError("sim_backend=gpu runs ManiSkill's physx_cuda simulation and needs a CUDA GPU; "
                              "this machine has none (use the default cpu backend)")
        if suite is not None or want_video:
            raise ConfigError("sim_backend=gpu evaluates nominal episodes without videos; robustness suites and "
                              "rollout videos run on the cpu backend")
    env_kwargs = dict(obs_mode=c.obs_mode, control_mode=c.control_mode,
                      render_mode="rgb_array" if want_video else None, max_episode_steps=horizon,
                      image_size=c.image_size or None)
    fn = (partial(make_env, c.env_id, cpu_wrapper=True, **env_kwargs) if suite is None else
          partial(make_perturbed_env, c.env_id, suite, level, **env_kwargs))
    perturbation = None if suite is None else {"suite": suite, "level": level,
                                               "suite_spec": describe(suite, level, c.env_id)}
    if sim_backend == "gpu":
        envs = BatchedManiSkillEnvs(c.env_id, num_envs, "physx_cuda", **env_kwargs)
    else:
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
    records, latencies, call_sizes = [], [], []
    steps = num_inference_steps
    bar = tqdm(total=episodes, desc=f"eval {c.env_id}", disable=not progress, dynamic_ncols=True)
    t_start = time.perf_counter()
    torch.manual_seed(seed)  # the samplers' noise: a rerun of the same evaluation draws the same

    def plan(group: list[int]) -> None:
        """One policy call for the actors in ``group`` (stacked histories)."""
        batch = stack_batches([actors[i].batch() for i in group])
        t0 = time.perf_counter()
        chunks = policy.predict_action_chunk(batch, steps, method)
        latencies.append(time.perf_counter() - t0)
        call_sizes.append(len(group))
        chunks = chunks.cpu().numpy()
        for j, i in enumerate(group):
            actors[i].plan(chunks[j])

    try:
        for start in range(0, episodes, num_envs):
            active = list(range(min(num_envs, episodes - start)))
            round_seeds = [seeds[start + i] if i in active else seeds[start] + 10_000_000 for i in range(num_envs)]
            obs, _ = envs.reset(seed=round_seeds)
            actors = [ChunkActor(c.n_obs_steps, c.n_hist, n_exec, c.action_dim, ensemble) for _ in range(num_envs)]
            first_success = [None] * num_envs
            nonfinite = [0] * num_envs  # steps whose action held NaN / inf (executed as "no motion")
            success = np.zeros(num_envs, dtype=bool)
            reached: dict[str, np.ndarray] = {}
            last_flags: dict[str, np.ndarray] = {}
            filmed = [i for i in active if start + i < video_episodes] if want_video else []
            frames = {i: [] for i in filmed}
            for t in range(horizon):
                if filmed:
                    shots = envs.render() if num_envs == 1 else envs.call("render")
                    for i in filmed:
                        frames[i].append(np.asarray(shots[i]).reshape(-1, *np.asarray(shots[i]).shape[-3:])[0])
                actions = np.zeros((num_envs, c.action_dim), dtype=np.float32)
                for i in active:
                    frame = obs_to_frame(_index(obs, i), c.obs_mode, c.qpos_dim, c.camera or None)
                    if t == 0:
                        check_observation(frame, c)
                    actors[i].observe(frame)
                need = [i for i in active if actors[i].needs_plan()]
                if need:
                    for group in ([need] if batched else [[i] for i in need]):
                        plan(group)
                for i in active:
                    actions[i] = actors[i].act()
                    if not np.isfinite(actions[i]).all():  # a policy failure, not an evaluator crash
                        nonfinite[i] += 1
                        actions[i] = np.nan_to_num(actions[i], nan=0.0, posinf=0.0, neginf=0.0)
                obs, _, _, _, info = envs.step(actions)
                success = np.asarray(info["success"], dtype=bool).reshape(num_envs)
                last_flags = stage_flags(info, num_envs)
                for k, flag in last_flags.items():
                    reached[k] = reached.get(k, np.zeros(num_envs, dtype=bool)) | flag
                for i in active:
                    if success[i] and first_success[i] is None:
                        first_success[i] = t + 1
            applied = (envs.call("perturbation_record") if suite is not None else None)
            for i in active:
                rec = {"episode": start + i, "seed": seeds[start + i],
                       "success_once": first_success[i] is not None, "success_at_end": bool(success[i]),
                       "episode_length": first_success[i] or horizon, "nonfinite_action_steps": nonfinite[i],
                       "stages_reached": {k: bool(v[i]) for k, v in reached.items()},
                       "stages_at_end": {k: bool(v[i]) for k, v in last_flags.items()}}
                if applied is not None:
                    rec.update(suite=suite, level=level, perturbation=applied[i])
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
                write_json_atomic(out, _summary(records, latencies, call_sizes, policy, steps, method, seeds, horizon,
                                                num_envs, threads, t_start, extra_info, allow_demo_seeds,
                                                complete=False, perturbation=perturbation, n_exec=n_exec,
                                                ensemble=ensemble))
    finally:
        bar.close()
        envs.close()
        torch.set_num_threads(prev_threads)
    summary = _summary(records, latencies, call_sizes, policy, steps, method, seeds, horizon, num_envs, threads,
                       t_start, extra_info, allow_demo_seeds, complete=True, perturbation=perturbation,
                       n_exec=n_exec, ensemble=ensemble)
    if out is not None:
        write_json_atomic(out, summary)
    return summary


SIM_BACKENDS = ("cpu", "gpu")


class BatchedManiSkillEnvs:
    """ManiSkill's own batched simulation behind the small vector-env interface ``evaluate`` uses:
    ``reset(seed=[...]) -> (obs, info)``, ``step(actions (N, A)) -> (obs, r, term, trunc, info)``
    with numpy arrays whose first axis is the environment, ``info["success"] (N,)``, ``close()``.

    ``sim_backend="physx_cuda"`` runs ``num_envs`` environments in one GPU simulation;
    ``"physx_cpu"`` (one environment) exercises the same conversion code without a GPU.
    Terminations are ignored (every episode runs to the horizon) and nothing auto-resets.
    """

    def __init__(self, env_id: str, num_envs: int, sim_backend: str, obs_mode: str, control_mode: str,
                 max_episode_steps: int, render_mode=None, image_size=None):
        import gymnasium as gym
        from mani_skill.vector.wrappers.gymnasium import ManiSkillVectorEnv

        from .maniskill import render_backend

        if sim_backend == "physx_cpu" and num_envs != 1:
            raise ConfigError(f"ManiSkill's physx_cpu backend runs one environment per process, got num_envs={num_envs}")
        kwargs = {"sensor_configs": dict(width=image_size, height=image_size)} if image_size else {}
        env = gym.make(env_id, num_envs=num_envs, obs_mode=obs_mode, control_mode=control_mode,
                       render_mode=render_mode, sim_backend=sim_backend, render_backend=render_backend(),
                       max_episode_steps=max_episode_steps, **kwargs)
        self.env = ManiSkillVectorEnv(env, num_envs, auto_reset=False, ignore_terminations=True)
        self.num_envs = num_envs

    @staticmethod
    def _np(tree):
        from mani_skill.utils import common

        return common.to_numpy(tree)

    def reset(self, seed=None):
        obs, info = self.env.reset(seed=list(seed) if seed is not None else None)
        return self._np(obs), info

    def step(self, actions):
        act = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.env.device)
        obs, rew, term, trunc, info = self.env.step(act)
        flags = {k: v for k, v in info.items() if isinstance(v, torch.Tensor) and v.dtype == torch.bool
                 and tuple(v.shape) == (self.num_envs,)}  # the task's sub-goal flags, as the CPU envs give them
        info = {**{k: self._np(v) for k, v in flags.items()},
                "success": self._np(info["success"]).reshape(self.num_envs)}
        return self._np(obs), self._np(rew), self._np(term), self._np(trunc), info

    def close(self):
        self.env.close()


def check_observation(frame: dict, config) -> None:
    """The environment's observation must have the sizes the policy was trained on."""
    got, want = frame["state"].shape[-1], config.state_dim
    if got != want:
        raise ConfigError(f"{config.env_id} ({config.obs_mode}, {config.control_mode}) gives {got}-dim state "
                          f"observations but the policy was trained on {want}-dim ones; evaluate it on the task and "
                          "observation mode it was trained for")
    if frame["qpos"].shape[-1] != config.qpos_dim:
        raise ConfigError(f"{config.env_id} gives {frame['qpos'].shape[-1]} joint positions but the policy was trained "
                          f"on {config.qpos_dim}")


def _summary(records, latencies, call_sizes, policy, steps, method, seeds, horizon, num_envs, threads, t_start,
             extra_info, allow_demo_seeds, complete: bool, perturbation: dict | None, n_exec: int,
             ensemble: float | None = None) -> dict:
    from ..config import to_dict

    n = len(records)
    obj = policy.objective
    once = sum(bool(r["success_once"]) for r in records)
    at_end = sum(bool(r["success_at_end"]) for r in records)
    splits = sorted({split_of(s) for s in seeds[:n]})
    res = {
        "env_id": policy.config.env_id,
        "episodes": n,
        "complete": complete,
        "success_once": once / n if n else math.nan,
        "success_once_ci95": list(wilson_interval(once, n)),
        "success_at_end": at_end / n if n else math.nan,
        "success_at_end_ci95": list(wilson_interval(at_end, n)),
        "mean_episode_length": float(np.mean([r["episode_length"] for r in records])) if n else math.nan,
        # Actions with NaN / inf (executed as zeros, i.e. no motion); a healthy policy has none.
        "nonfinite_action_steps": int(sum(r.get("nonfinite_action_steps", 0) for r in records)),
        "stages_reached": stage_rates(records),
        "stages_at_end": stage_rates(records, "stages_at_end"),
        "by_direction": direction_breakdown(records),  # displace suite: success by where the push went
        "push_outcomes": push_outcomes(records),  # displace suite: pushed before the first success or not
        "objective": obj.name,
        "num_inference_steps": steps or obj.default_steps,
        "method": method or getattr(obj, "default_method", None),
        "model_calls_per_chunk": obj.model_calls(steps, method),
        "n_action_steps": n_exec,  # actions executed per policy call (planned every n with ensembling)
        "temporal_ensemble": ensemble,  # ACT's m, None = off
        "latency": {**latency_stats(latencies), "threads": threads,
                    "device": str(next(iter(policy.parameters())).device),
                    "batch_size_mean": float(np.mean(call_sizes)) if call_sizes else None,
                    "batch_size_max": int(max(call_sizes)) if call_sizes else None},
        "policy_calls": len(call_sizes),
        "horizon": horizon,
        "registered_max_episode_steps": registered_max_episode_steps(policy.config.env_id),
        "num_envs": num_envs,
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "seed_split": splits[0] if len(splits) == 1 else "+".join(splits),
        "demo_seeds_allowed": bool(allow_demo_seeds),
        "suite": perturbation["suite"] if perturbation else None,
        "level": perturbation["level"] if perturbation else None,
        "suite_spec": perturbation["suite_spec"] if perturbation else None,
        "seeds": seeds[:n],
        "per_episode": records,
        "policy_config": to_dict(policy.config),
        "versions": versions(),
    }
    if extra_info:
        res.update(extra_info)
    return res
