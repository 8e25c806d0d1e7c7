"""Demonstrations from ManiSkill's motion planner, converted by ManiSkill's replay tool.

The planner acts in ``pd_joint_pos``; :func:`make_dataset` then replays each successful
episode into the requested observation and control modes. The whole dataset directory is
written under a temporary name and renamed when complete, so an interrupted run never leaves
a half dataset where a good one was.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import time
from pathlib import Path

from ..errors import DataError
from ..pretrained import atomic_directory
from .maniskill import check_env_offline, import_maniskill, render_backend

RAW_NAME = "motionplanning"


class PlannerActionNoise:
    """Perturb the motion planner's executed arm targets so that demos visit states off the
    planned path and show the way back (recovery demos, after DART's noise injection).

    Wraps the recording environment: the solver calls ``step`` here, Gaussian noise is added to
    the arm's joint-position targets (radians; the gripper command is untouched) and the
    *noisy* action is what ManiSkill records, so the replay into other control modes reproduces
    the perturbed episode exactly. The noise is an AR(1) process, ``o_t = rho o_{t-1} +
    sqrt(1 - rho^2) sigma e_t`` (``rho = 0``: independent per step as in DART; larger rho: slower
    drifts that take the arm centimetres away), reset with each episode. The planner plans every
    segment from the robot's current joint positions, so later segments start from the disturbed
    state. Differs from DART: the labels are the executed (noisy) motions after conversion, not
    the supervisor's clean action at the visited state, so they contain the perturbation as well
    as the return to the path.
    """

    def __init__(self, env, sigma: float, rho: float = 0.0, arm_dims: int = 7, seed: int = 0):
        import numpy as np

        if sigma < 0 or not 0 <= rho < 1:
            raise DataError(f"action noise needs sigma >= 0 and 0 <= rho < 1, got sigma={sigma}, rho={rho}")
        self.env, self.sigma, self.rho, self.arm_dims = env, sigma, rho, arm_dims
        self.rng = np.random.default_rng(seed)
        self.offset = np.zeros(arm_dims)

    def reset(self, *args, **kwargs):
        self.offset[:] = 0.0
        return self.env.reset(*args, **kwargs)

    def step(self, action):
        import numpy as np

        action = np.array(action, dtype=np.float64, copy=True)
        e = self.rng.standard_normal(self.arm_dims)
        self.offset = self.rho * self.offset + np.sqrt(1.0 - self.rho ** 2) * self.sigma * e
        action[..., :self.arm_dims] += self.offset
        return self.env.step(action.astype(np.float32))

    def __getattr__(self, name):  # everything else (unwrapped, agent, flush_trajectory, ...) is the env's
        return getattr(self.env, name)


def planner_solutions() -> dict:
    import_maniskill()
    from mani_skill.examples.motionplanning.panda.run import MP_SOLUTIONS

    return MP_SOLUTIONS


def plan_demos(env_id: str, num_demos: int, out_dir: Path, seed: int = 0, image_size: int | None = None,
               progress: bool = True, max_tries_factor: float = 4.0, action_noise: float = 0.0,
               noise_rho: float = 0.0) -> dict:
    """Run the motion planner until ``num_demos`` episodes succeed; keep only those.

    Writes ``out_dir/motionplanning.{h5,json}`` (pd_joint_pos actions, env states). With
    ``action_noise > 0`` the executed arm targets are perturbed (:class:`PlannerActionNoise`).
    """
    check_env_offline(env_id)
    solutions = planner_solutions()
    if env_id not in solutions:
        raise DataError(f"ManiSkill has no motion-planning solution for {env_id}; "
                        f"planners exist for {sorted(solutions)}")
    import gymnasium as gym
    import numpy as np
    from mani_skill.utils.wrappers.record import RecordEpisode
    from tqdm.auto import tqdm

    kwargs = dict(obs_mode="none", control_mode="pd_joint_pos", render_mode=None,
                  sim_backend="physx_cpu", render_backend=render_backend())
    if image_size:
        kwargs["sensor_configs"] = dict(width=image_size, height=image_size)
    env = gym.make(env_id, **kwargs)
    env = RecordEpisode(env, output_dir=str(out_dir), trajectory_name=RAW_NAME, save_video=False,
                        source_type="motionplanning", source_desc="ManiSkill motion-planning solution",
                        record_reward=False, save_on_reset=False)
    recorder = env
    if action_noise > 0:
        env = PlannerActionNoise(recorder, action_noise, noise_rho, seed=seed)
    solve = solutions[env_id]
    ok, tries, lengths, t0 = 0, 0, [], time.perf_counter()
    max_tries = int(math.ceil(max_tries_factor * num_demos)) + 10
    bar = tqdm(total=num_demos, desc=f"plan {env_id}", disable=not progress, dynamic_ncols=True)
    try:
        while ok < num_demos:
            if tries >= max_tries:
                raise DataError(f"{env_id}: only {ok} of {tries} motion plans succeeded; "
                                f"giving up before {num_demos} demos")
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    res = solve(env, seed=seed + tries, debug=False, vis=False)
            except Exception:  # the planner raises on unreachable goals: a failed attempt
                res = -1
            tries += 1
            success = res != -1 and bool(np.asarray(res[-1]["success"]).item())
            if success:
                lengths.append(int(np.asarray(res[-1]["elapsed_steps"]).item()))
                recorder.flush_trajectory()
                ok += 1
                bar.update(1)
                bar.set_postfix(success_rate=f"{ok / tries:.2f}")
            else:
                recorder.flush_trajectory(save=False)
    finally:
        bar.close()
        recorder.close()
    return {"planned": ok, "attempts": tries, "planner_success_rate": ok / max(tries, 1),
            "mean_length": float(np.mean(lengths)) if lengths else 0.0,
            "plan_seconds": round(time.perf_counter() - t0, 2)}


def convert_demos(raw_h5: Path, obs_mode: str, control_mode: str, num_procs: int = 1) -> Path:
    """Replay ``raw_h5`` into ``obs_mode`` / ``control_mode`` with ManiSkill's replay tool."""
    import_maniskill()
    from mani_skill.trajectory import replay_trajectory as rt

    args = rt.Args(traj_path=str(raw_h5), obs_mode=obs_mode, target_control_mode=control_mode,
                   save_traj=True, sim_backend="physx_cpu", num_envs=num_procs, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        rt.main(args)
    out = raw_h5.with_name(f"{raw_h5.stem}.{obs_mode}.{control_mode}.physx_cpu.h5")
    if not out.is_file():
        raise DataError(f"ManiSkill's replay did not write {out}")
    return out


def trim_episodes(h5_path: Path, keep: int) -> int:
    """Keep the first ``keep`` trajectories of a ManiSkill h5 (+ json); returns the count kept."""
    import h5py

    meta_path = h5_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    episodes = meta["episodes"]
    with h5py.File(h5_path, "a") as f:
        for ep in episodes[keep:]:
            key = f"traj_{ep['episode_id']}"
            if key in f:
                del f[key]
    meta["episodes"] = episodes[:keep]
    meta_path.write_text(json.dumps(meta, indent=2))
    return len(meta["episodes"])


def make_dataset(env_id: str, num_demos: int, obs_mode: str, control_mode: str, out: Path,
                 seed: int = 0, image_size: int | None = None, num_procs: int = 1,
                 progress: bool = True, action_noise: float = 0.0, noise_rho: float = 0.0) -> dict:
    """Plan, convert and write a complete dataset directory ``out`` (atomically)."""
    if num_demos < 1:
        raise DataError(f"--num-demos must be >= 1, got {num_demos}")
    out = Path(out)
    t0 = time.perf_counter()
    with atomic_directory(out) as tmp:
        # A margin: some episodes do not survive the control-mode conversion (perturbed ones more often:
        # the noise rotates the hand, which a position-only controller cannot replay).
        extra = max(2, int(math.ceil((0.25 if action_noise > 0 else 0.05) * num_demos)))
        stats = plan_demos(env_id, num_demos + extra, tmp, seed=seed, image_size=image_size, progress=progress,
                           action_noise=action_noise, noise_rho=noise_rho)
        t1 = time.perf_counter()
        if progress:
            print(f"converting {stats['planned']} demos to obs_mode={obs_mode}, control_mode={control_mode} ...",
                  flush=True)
        converted = convert_demos(tmp / f"{RAW_NAME}.h5", obs_mode, control_mode, num_procs=num_procs)
        kept = trim_episodes(converted, num_demos)
        if kept < num_demos:
            raise DataError(f"{env_id}: only {kept} of {stats['planned']} demos converted to "
                            f"{control_mode}; tasks that need rotation (PegInsertionSide, LiftPegUpright) convert to "
                            "pd_joint_delta_pos or pd_ee_delta_pose")
        summary = {"env_id": env_id, "num_demos": kept, "obs_mode": obs_mode, "control_mode": control_mode,
                   "seed": seed, "image_size": image_size, "action_noise": action_noise, "noise_rho": noise_rho,
                   "dataset": converted.name, **stats,
                   "convert_seconds": round(time.perf_counter() - t1, 2),
                   "total_seconds": round(time.perf_counter() - t0, 2)}
        (tmp / "dataset.json").write_text(json.dumps(summary, indent=2))
    summary["path"] = str(out / summary["dataset"])
    return summary
